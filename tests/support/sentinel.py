"""A Redis Sentinel set-up of the test's own: one master, one replica, three sentinels, all from
the ``redis-server`` binary on free loopback ports in a temporary directory, with passwords.

    with sentinel_setup(tmp_path) as s:
        s.url                 # sentinel://:PW@127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/0?master=...
        s.kill_master()       # SIGKILL of the current master; returns when a sentinel names another
        s.master_port()       # what the sentinels say now

``sentinel_setup(tmp_path, tls=True)`` makes every server TLS-only (``port 0`` + ``tls-port``):
certificates from ``openssl`` signed by a private CA of the test's own (``s.tls.ca``), the
replica and the sentinels speak TLS to the data servers (``tls-replication yes``), and every
server requires a client certificate signed by that CA (``tls-auth-clients yes``; not with
``client_certs=False``); ``s.url`` then carries ``ssl=true&ssl_ca_certs=...`` (and
``&ssl_certfile=...&ssl_keyfile=...``).

Every process is stopped by its PID at the end; the shared Redis is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.servers import free_port

PASSWORD = "s3ntinel-test"  # the Redis master's (and replica's) password
SENTINEL_PASSWORD = "watch-3rs"  # the sentinels' own


@dataclass(frozen=True)
class TLSFiles:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_certs: bool = True  # do the servers require (and the URL carry) a client certificate?

    @classmethod
    def make(cls, d: Path, *, client_certs: bool = True) -> TLSFiles:
        if shutil.which("openssl") is None:
            pytest.fail("openssl not found on PATH", pytrace=False)
        d.mkdir(parents=True, exist_ok=True)
        files = cls(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key",
                    client_certs)

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out", str(files.ca),
            "-days", "1", "-subj", "/CN=woow test CA")
        for cert, key, cn, ext in ((files.server_cert, files.server_key, "127.0.0.1",
                                    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"),
                                   (files.client_cert, files.client_key, "woow client",
                                    "extendedKeyUsage=clientAuth\n")):
            csr, extfile = cert.with_suffix(".csr"), cert.with_suffix(".ext")
            extfile.write_text(ext)
            run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
            run("x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(extfile))
        return files

    def server_args(self) -> list[str]:
        """``redis-server`` arguments of a TLS-only server (sentinels take the same as config lines)."""
        return ["--tls-cert-file", str(self.server_cert), "--tls-key-file", str(self.server_key),
                "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "yes" if self.client_certs else "no",
                "--tls-replication", "yes"]

    def client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.ca)}
        if self.client_certs:
            kw.update(ssl_certfile=str(self.client_cert), ssl_keyfile=str(self.client_key))
        return kw

    def query(self) -> str:
        """The sentinel URL's TLS options for these files."""
        return "ssl=true&" + "&".join(f"{k}={v}" for k, v in self.client_kwargs().items() if k != "ssl")


class SentinelSetup:
    def __init__(self, base: Path, *, down_after_ms: int = 1000, failover_timeout_ms: int = 3000,
                 tls: bool = False, client_certs: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found on PATH", pytrace=False)
        self.binary = binary
        self.base = base
        self.master_name = f"woow{uuid.uuid4().hex[:6]}"
        self.data_ports = [free_port(), free_port()]  # [initial master, replica]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.tls = TLSFiles.make(base / "tls", client_certs=client_certs) if tls else None

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        url = f"sentinel://:{PASSWORD}@{hosts}/0?master={self.master_name}&sentinel_password={SENTINEL_PASSWORD}"
        return f"{url}&{self.tls.query()}" if self.tls else url

    def _listen(self, port: int) -> list[str]:
        """Where a server listens: its port, or (TLS) its TLS port only."""
        if self.tls is None:
            return ["--port", str(port)]
        return ["--port", "0", "--tls-port", str(port), *self.tls.server_args()]

    def _data_args(self, port: int) -> list[str]:
        return [*self._listen(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--requirepass", PASSWORD, "--masterauth", PASSWORD]

    def client(self, port: int, password: str, **kwargs: Any) -> redis.Redis:
        """A plain client of one server of the set-up (TLS with the test's client certificate)."""
        tls = self.tls.client_kwargs() if self.tls else {}
        return redis.Redis(host="127.0.0.1", port=port, password=password, **tls, **kwargs)

    def _spawn(self, port: int, args: list[str]) -> None:
        d = self.base / str(port)
        d.mkdir(parents=True, exist_ok=True)
        with (d / "log").open("ab") as log:
            self.procs[port] = subprocess.Popen([self.binary, *args], cwd=d, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _wait(self, port: int, password: str, timeout: float = 15.0) -> None:
        client = self.client(port, password, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    proc = self.procs[port]
                    if time.monotonic() > deadline or proc.poll() is not None:
                        log = (self.base / str(port) / "log").read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"redis on port {port} did not start:\n{log}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def start(self) -> SentinelSetup:
        master, replica = self.data_ports
        self._spawn(master, self._data_args(master))
        self._spawn(replica, [*self._data_args(replica), "--replicaof", "127.0.0.1", str(master)])
        for port in (master, replica):
            self._wait(port, PASSWORD)
        for port in self.sentinel_ports:
            conf = self.base / f"sentinel-{port}.conf"
            listen = self._listen(port)  # "--name", "value" pairs -> "name value" config lines
            conf.write_text(
                "".join(f"{k.removeprefix('--')} {v}\n" for k, v in zip(listen[::2], listen[1::2], strict=True))
                + f"bind 127.0.0.1\ndir {self.base}\nrequirepass {SENTINEL_PASSWORD}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {master} 2\n"
                f"sentinel auth-pass {self.master_name} {PASSWORD}\n"
                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master_name} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.master_name} 1\n"
            )
            self._spawn(port, [str(conf), "--sentinel"])
        for port in self.sentinel_ports:
            self._wait(port, SENTINEL_PASSWORD)
        # the replica is in sync and every sentinel knows it before the set-up is handed out
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(self._replicas_known(p) for p in self.sentinel_ports) and self._replica_synced():
                return self
            time.sleep(0.1)
        raise RuntimeError("sentinel set-up did not settle (replica not in sync or not discovered)")

    def _sentinel(self, port: int) -> redis.Redis:
        return self.client(port, SENTINEL_PASSWORD, socket_connect_timeout=1, socket_timeout=2,
                           decode_responses=True)

    def _replicas_known(self, port: int) -> bool:
        with contextlib.closing(self._sentinel(port)) as c:
            try:
                return bool(c.sentinel_slaves(self.master_name))
            except redis.RedisError:
                return False

    def _replica_synced(self) -> bool:
        with contextlib.closing(self.client(self.data_ports[1], PASSWORD, decode_responses=True)) as c:
            info = c.info("replication")
        return info.get("master_link_status") == "up"

    def master_port(self) -> int | None:
        for port in self.sentinel_ports:
            with contextlib.closing(self._sentinel(port)) as c:
                try:
                    addr = c.sentinel_get_master_addr_by_name(self.master_name)
                except redis.RedisError:
                    continue
                if isinstance(addr, tuple | list) and addr:
                    return int(addr[1])
        return None

    def kill_master(self, timeout: float = 30.0) -> float:
        """SIGKILL the current master; returns the seconds until the sentinels named the new one."""
        old = self.master_port()
        assert old is not None, "no master known to the sentinels"
        proc = self.procs[old]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            now = self.master_port()
            if now is not None and now != old:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(f"no failover within {timeout}s after the master on {old} was killed")

    def restart_as_replica(self) -> None:
        """Start the killed data server again, as a replica of the current master."""
        master = self.master_port()
        assert master is not None
        for port, proc in list(self.procs.items()):
            if port in self.data_ports and proc.poll() is not None:
                self._spawn(port, [*self._data_args(port), "--replicaof", "127.0.0.1", str(master)])
                self._wait(port, PASSWORD)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)


@contextmanager
def sentinel_setup(base: Path, **kwargs: Any) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(base, **kwargs)
    try:
        yield setup.start()
    finally:
        setup.stop()
