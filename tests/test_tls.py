"""Redis over TLS (rediss://): beat, worker, RedBeat, locks and the broker on one TLS-only
redis-server of the test's own (a throwaway certificate from openssl)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.procs import celery_beat, celery_worker, wait_for
from tests.sentinel import free_port
from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.redis_store import make_redis
from woow_scheduler.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found on PATH", pytrace=False)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    with (tmp_path / "redis.log").open("wb") as log:
        proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                                 "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients",
                                 "no", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
    try:
        wait_for(lambda: _pings(url), 15, "the TLS redis-server")
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _pings(url: str) -> bool:
    try:
        return bool(make_redis(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def test_beat_and_worker_over_tls(tls_redis: str, pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(database_url=pg_url, redis_url=tls_redis, key_prefix="tls:",
                             queue=f"tls-{uuid.uuid4().hex[:6]}", beat_lock_timeout=4.0, heartbeat_interval=1.0)
    db = Database(pg_url)
    with db.session() as s:
        wf = Workflow(name="tls", steps=[{"name": "hi", "type": "log", "config": {"message": "hi"}}])
        s.add(wf)
        s.flush()
        s.add(Trigger(workflow_id=wf.id, name="every-second", type="cron",
                      spec={"type": "cron", "expression": "* * * * * ?"}))

    def succeeded() -> int:
        with db.session() as s:
            rows = s.scalars(select(Execution).where(Execution.status == ExecutionStatus.SUCCEEDED)).all()
        return len(rows) >= 3 and len(rows)

    logs = tmp_path / "logs"
    with celery_worker(settings, log_dir=logs) as worker, celery_beat(settings, log_dir=logs) as beat:
        wait_for(succeeded, 40, "three fires over TLS")
        assert "rediss://" in worker.log()
        beat_log = beat.log()
    db.dispose()
    assert "Traceback" not in beat_log, beat_log[-3000:]
