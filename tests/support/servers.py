"""Servers a fault-injection test owns: Redis and PostgreSQL on free loopback ports, stopped by PID.

Never the shared servers on 6379/5432: a scenario that kills or restarts a store starts its own.

    redis = RedisServer(tmp); redis.start(); ...; redis.kill(); redis.start()   # restarted EMPTY
    pg = ThrowawayPostgres(base); pg.init(); pg.start(); ...; pg.stop(); pg.start()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from woow_scheduler.cli.dev import free_port as free_port  # re-exported: the one free_port


def is_root() -> bool:
    return os.geteuid() == 0


def pg_bin(name: str) -> str:
    found = next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None) or shutil.which(
        name
    )
    if found is None:
        pytest.fail(f"PostgreSQL binary {name} not found (install postgresql)", pytrace=False)
    return str(found)


class RedisServer:
    """``redis-server`` without persistence on a fixed free port; ``kill()`` + ``start()`` = restarted empty."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.dir = base
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found on PATH", pytrace=False)
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: everything in memory is gone (no persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()


class ThrowawayPostgres:
    """A PostgreSQL server of the test's own (initdb + pg_ctl), run as the postgres user when root."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "pgdata"
        self.sock = base
        self.port = free_port()
        self.prefix: list[str] = ["runuser", "-u", "postgres", "--"] if is_root() else []
        if is_root():
            shutil.chown(base, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(pg_bin("pg_ctl"), "-D", str(self.dir), "-o", opts, "-w", "-l", str(self.sock / "pg.log"), "start")

    def stop(self) -> None:
        """Immediate shutdown (no checkpoint: as close to a crash as pg_ctl gets)."""
        self._run(pg_bin("pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started server in a fresh directory (not under pytest's tmp: the postgres user cannot enter it)."""
    base = Path(tempfile.mkdtemp(prefix="woow-pg-"))
    pg = ThrowawayPostgres(base)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def throwaway_redis(base: Path) -> Iterator[RedisServer]:
    server = RedisServer(base).start()
    try:
        yield server
    finally:
        server.kill()
