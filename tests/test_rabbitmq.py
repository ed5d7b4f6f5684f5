"""RabbitMQ as the broker, end to end: beat on Redis, broker on RabbitMQ, real beat and worker
processes.  Each test has its own vhost (tests/rabbitmq.py); they run in ``make test`` wherever
RabbitMQ answers (``.ci/run`` makes sure it does)."""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.procs import CeleryProcess, celery_beat, celery_worker, child_env, wait_for, woow_command
from tests.rabbitmq import amqp_vhost
from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.messaging.publish import enqueue_fire
from woow_scheduler.settings import Settings, load_settings
from woow_scheduler.worker import get_app

pytestmark = pytest.mark.slow


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with amqp_vhost() as url:
        yield url


@pytest.fixture
def asettings(pg_url: str, redis_url: str, key_prefix: str, amqp_url: str) -> Settings:
    # visibility_timeout is a Redis-transport setting: an hour here, so nothing but RabbitMQ's own
    # redelivery (on the dead consumer's connection loss) can bring a killed worker's message back
    return load_settings(database_url=pg_url, redis_url=redis_url, key_prefix=key_prefix, broker_url=amqp_url,
                         queue=f"woow-{uuid.uuid4().hex[:6]}", beat_lock_timeout=4.0, heartbeat_interval=1.0,
                         bookkeeping_interval=0.5, reconcile_interval=2.0, lock_ttl=3.0, visibility_timeout=3600)


def _workflow(db: Database, steps: list[dict[str, object]], concurrency: str = "forbid") -> Workflow:
    with db.session() as s:
        wf = Workflow(name=f"amqp-{uuid.uuid4().hex[:6]}", steps=steps, concurrency=concurrency)
        s.add(wf)
    return wf


def _rows(db: Database, wf: Workflow) -> list[Execution]:
    with db.session() as s:
        return list(s.scalars(select(Execution).where(Execution.workflow_id == wf.id)).all())


def test_beat_on_redis_worker_on_rabbitmq_every_fire_once(asettings: Settings, db: Database, tmp_path: Path) -> None:
    # allow: two fires a second apart may run side by side on the two processes; none is skipped
    wf = _workflow(db, [{"name": "hi", "type": "log", "config": {"message": "hi"}}], concurrency="allow")
    with db.session() as s:
        tr = Trigger(workflow_id=wf.id, name="every-second", type="cron",
                     spec={"type": "cron", "expression": "* * * * * ?"})
        s.add(tr)
    logs = tmp_path / "logs"
    with celery_worker(asettings, log_dir=logs) as worker, celery_beat(asettings, log_dir=logs) as beat:
        def fired() -> list[Execution] | None:
            rows = [r for r in _rows(db, wf) if r.status == ExecutionStatus.SUCCEEDED]
            return rows if len(rows) >= 4 else None

        wait_for(fired, 30, "four succeeded fires through RabbitMQ")
        # the same fire published three times (a redelivery, a second beat) runs once
        app = get_app(asettings)
        when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        for _ in range(3):
            enqueue_fire(app, asettings, workflow_id=wf.id, workflow_name=wf.name, trigger_id=tr.id, user_id=None,
                         scheduled_for=when)
        wait_for(lambda: worker.log().count("duplicate delivery ignored") >= 2, 20, "two duplicates ignored")
        app.close()
        status = subprocess.run([*woow_command("status", "--check", "broker", "--check", "workers", "--json")],
                                env=child_env(asettings), capture_output=True, text=True, timeout=60)
        report = json.loads(status.stdout)
        assert status.returncode == 0, report
        assert report["checks"]["broker"]["detail"]["url"].startswith("amqp://")
        beat_log = beat.log()
    rows = _rows(db, wf)
    fires = sorted(r.scheduled_for for r in rows if r.scheduled_for is not None and r.scheduled_for < when)
    assert len(fires) == len(set(fires)), "a fire ran twice"
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(fires)), fires
    assert [r.status for r in rows if r.scheduled_for == when] == [ExecutionStatus.SUCCEEDED]
    assert all(r.status == ExecutionStatus.SUCCEEDED for r in rows), [(r.scheduled_for, r.status, r.error)
                                                                      for r in rows]
    assert "Traceback" not in beat_log, beat_log


def test_worker_kill9_mid_run_rabbitmq_redelivers(asettings: Settings, db: Database, tmp_path: Path) -> None:
    """acks_late on RabbitMQ: the killed consumer's unacked message goes back at once, to a worker
    that is already waiting, so it arrives while the dead run's lock still lives: that worker must
    defer it (not drop it as a duplicate) and take the stale execution over once the lock expires."""
    wf = _workflow(db, [{"name": "nap", "type": "sleep", "config": {"seconds": 10}}])
    with db.session() as s:
        tr = Trigger(workflow_id=wf.id, name="once", type="once", spec={"type": "once"})
        s.add(tr)
    logs = tmp_path / "logs"
    when = datetime.now(UTC).replace(microsecond=0)
    app = get_app(asettings)
    victim = CeleryProcess("worker", asettings, ["--pool", "prefork", "-c", "1", "-n", "victim@%h", "-l", "INFO",
                                                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                           log_path=logs / "victim.log").start().wait_ready(40)
    try:
        enqueue_fire(app, asettings, workflow_id=wf.id, workflow_name=wf.name, trigger_id=tr.id, user_id=None,
                     scheduled_for=when)
        running = wait_for(lambda: [r for r in _rows(db, wf) if r.status == ExecutionStatus.RUNNING], 20,
                           "the run to start on the victim")
        victim_worker = running[0].worker
        assert int(victim_worker.rsplit(":", 1)[1]) in set(victim.group_pids()) - {victim.pid}
        with celery_worker(asettings, log_dir=logs, name="heir") as heir:  # waiting before the kill
            assert [r.status for r in _rows(db, wf)] == [ExecutionStatus.RUNNING], "the run ended too soon"
            victim.kill9()
            done = wait_for(lambda: [r for r in _rows(db, wf) if ExecutionStatus(r.status).is_final], 60,
                            "the redelivered fire to finish")
            assert "took over a stale execution" in heir.log(), heir.log()[-3000:]
    finally:
        victim.kill9()
        app.close()
    rows = _rows(db, wf)
    assert len(rows) == 1 and done[0].status == ExecutionStatus.SUCCEEDED, [(r.status, r.error) for r in rows]
    assert rows[0].worker != victim_worker  # finished by the heir, from the message RabbitMQ gave back
