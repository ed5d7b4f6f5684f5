"""Real Celery processes for end-to-end tests (workers, beat), started from a ``Settings`` object.

    with celery_worker(settings, concurrency=2, log_dir=tmp_path) as w:
        ...             # talk to it through Redis and PostgreSQL only
        w.kill9()       # or w.stop(); w.log() shows what it printed

Each process runs ``sys.executable -m celery -A woow_scheduler.worker <kind> ...`` in its own
session (process group), with the settings passed as ``WOOW_*`` variables and ``PYTHONPATH`` set
to the work tree, so it runs in whatever environment runs pytest.  Stopping sends SIGTERM to the
main process, then SIGKILL to the whole group: no process outlives its test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

from woow_scheduler.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]

# lines that tell a process is up
WORKER_READY = re.compile(r"@\S+ ready\.")
BEAT_READY = re.compile(r"beat: Starting")


def settings_env(settings: Settings) -> dict[str, str]:
    """``WOOW_*`` variables that rebuild ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"{ENV_PREFIX}{name.upper()}"] = text
    return env


def child_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("WOOW_CONFIG", None)
    if extra:
        env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "", interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def woow_command(*args: str) -> list[str]:
    """``woow ARGS...`` as the console script runs it, in this interpreter."""
    return [sys.executable, "-m", "woow_scheduler", *args]


class CeleryProcess:
    """One ``celery`` command (or another long-running command) in its own process group."""

    def __init__(
        self,
        kind: str,
        settings: Settings,
        args: Sequence[str] = (),
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready: re.Pattern[str] | None = None,
        app: str = "woow_scheduler.worker",
        command: Sequence[str] | None = None,
    ) -> None:
        self.kind = kind
        self.settings = settings
        self.args = list(args)
        self.log_path = log_path
        self.env = child_env(settings, env)
        self.ready_pattern = ready or (WORKER_READY if kind == "worker" else BEAT_READY)
        self.app = app
        self.command = list(command) if command is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self) -> CeleryProcess:
        cmd = self.command or [sys.executable, "-m", "celery", "-A", self.app, self.kind, *self.args]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._log_offset = out.tell()
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> CeleryProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_pattern.search(self.log()[self._log_offset :]):
                return self
            if not self.alive():
                raise RuntimeError(f"celery {self.kind} exited early:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"celery {self.kind} not ready after {timeout}s:\n{self.log()[-4000:]}")

    def group_pids(self) -> list[int]:
        """PIDs in the process group (main process and pool children)."""
        if self.proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with suppress(OSError, ProcessLookupError):
                if os.getpgid(int(entry.name)) == self.proc.pid:
                    pids.append(int(entry.name))
        return sorted(pids)

    def kill9(self) -> None:
        """SIGKILL the whole process group at once (no warm shutdown, nothing restored)."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (warm shutdown), then SIGKILL of the group after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stray pool children
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """``(name, state, parent pid)`` of a process from ``/proc/<pid>/stat``; ``None`` when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return name, state, int(ppid)


def children_named(parent: int, name: str) -> list[int]:
    """Live children of ``parent`` whose process name (``/proc/<pid>/comm``) is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[0] == name and stat[2] == parent and stat[1] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped yet counts as gone)."""
    stat = proc_stat(pid)
    return stat is None or stat[1] in ("Z", "X")


def worker_args(
    concurrency: int = 2, pool: str = "prefork", *, name: str | None = None, loglevel: str = "INFO"
) -> list[str]:
    """Arguments for a quick-starting worker (no gossip/mingle/heartbeat) with a unique node name."""
    node = name or f"w{uuid.uuid4().hex[:6]}"
    return [
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "-n",
        f"{node}@%h",
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


@contextmanager
def running(proc: CeleryProcess, ready_timeout: float = 30.0) -> Iterator[CeleryProcess]:
    """``proc`` started and ready for the block, stopped (TERM, then KILL of its group) after it."""
    try:
        proc.start().wait_ready(ready_timeout)
        yield proc
    finally:
        proc.stop()


def celery_worker(
    settings: Settings,
    *extra_args: str,
    log_dir: Path,
    concurrency: int = 2,
    pool: str = "prefork",
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> AbstractContextManager[CeleryProcess]:
    """A started, ready worker, stopped (TERM then KILL) when the block ends."""
    node = name or f"w{uuid.uuid4().hex[:6]}"
    args = [*worker_args(concurrency, pool, name=node), *extra_args]
    proc = CeleryProcess("worker", settings, args, log_path=log_dir / f"worker-{node}.log", env=env)
    return running(proc, ready_timeout)


def celery_beat(
    settings: Settings,
    *extra_args: str,
    log_dir: Path,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> AbstractContextManager[CeleryProcess]:
    """A started beat, stopped when the block ends (pass ``-S <scheduler class>`` in ``extra_args``)."""
    node = name or f"b{uuid.uuid4().hex[:6]}"
    args = ["-l", "INFO", "-s", str(log_dir / f"beat-{node}-schedule"), *extra_args]
    proc = CeleryProcess("beat", settings, args, log_path=log_dir / f"beat-{node}.log", env=env)
    return running(proc, ready_timeout)
