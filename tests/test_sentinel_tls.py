"""Redis Sentinel over TLS, end to end: a TLS-only master, a TLS replica (``tls-replication yes``)
and three sentinels on TLS ports, certificates from a private CA of the test's own, client
certificates required (tests/support/sentinel.py, ``tls=True``).  Beat and a worker (real
processes) reach the sentinels and the master through ``ssl_ca_certs`` / ``ssl_certfile`` /
``ssl_keyfile`` in the one sentinel URL (our clients, RedBeat, kombu's broker); fires are
recorded as succeeded in PostgreSQL, before and after the master is killed and the replica
promoted.  No password of the URL shows in the processes' output."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.procs import celery_beat, celery_worker, wait_for
from tests.support.sentinel import PASSWORD, SENTINEL_PASSWORD, sentinel_setup
from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.errors import StoreUnavailable
from woow_scheduler.redis_store import make_redis, ping
from woow_scheduler.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_beat_and_worker_over_tls_sentinels_with_a_private_ca_and_a_failover(pg_url: str, tmp_path: Path) -> None:
    db = Database(pg_url)
    with db.session() as s:
        wf = Workflow(name="sentinel-tls", steps=[{"name": "hi", "type": "log", "config": {"message": "hi"}}])
        s.add(wf)
        s.flush()
        s.add(Trigger(workflow_id=wf.id, name="every-second", type="cron",
                      spec={"type": "cron", "expression": "* * * * * ?"}))

    def succeeded_since(t: datetime, n: int) -> int:
        with db.session() as s:
            rows = s.scalars(select(Execution).where(Execution.status == ExecutionStatus.SUCCEEDED,
                                                     Execution.enqueued_at > t)).all()
        return len(rows) >= n and len(rows)

    logs = tmp_path / "logs"
    with sentinel_setup(tmp_path / "sentinel", tls=True) as setup:
        assert "ssl_ca_certs=" in setup.url and "ssl_certfile=" in setup.url
        # without the CA the certificates do not verify, and the error says so early in its one line
        # (a worker's log line keeps 300 characters), naming the sentinel, with no password
        no_ca = setup.url.split("&ssl_ca_certs=")[0]
        with pytest.raises(StoreUnavailable) as err:
            ping(make_redis(no_ca, socket_timeout=2))
        text = str(err.value)
        assert "CERTIFICATE_VERIFY_FAILED" in text[:300] and f"127.0.0.1:{setup.sentinel_ports[0]}" in text, text
        assert PASSWORD not in text and SENTINEL_PASSWORD not in text
        settings = load_settings(database_url=pg_url, redis_url=setup.url, key_prefix="stls:",
                                 queue=f"stls-{uuid.uuid4().hex[:6]}", beat_lock_timeout=4.0, heartbeat_interval=1.0,
                                 # a lock whose release the failover swallowed holds the workflow (forbid)
                                 # until it expires: keep that short
                                 lock_ttl=5.0)
        start = datetime.now(UTC)
        with celery_worker(settings, log_dir=logs) as worker, celery_beat(settings, log_dir=logs) as beat:
            wait_for(lambda: succeeded_since(start, 3), 40, "three fires over TLS sentinels")
            setup.kill_master()
            killed = datetime.now(UTC)
            wait_for(lambda: succeeded_since(killed, 3), 40, "three fires after the failover")
            output = worker.log() + beat.log()
    db.dispose()
    server_logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "sentinel").glob("*/log"))
    # nothing reached a server in plaintext, and no client was refused its certificate
    assert "wrong version number" not in server_logs and "bad certificate" not in server_logs
    assert PASSWORD not in output and SENTINEL_PASSWORD not in output
