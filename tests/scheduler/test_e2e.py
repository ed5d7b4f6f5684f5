"""End to end: real ``celery beat`` (our scheduler) and ``celery worker`` subprocesses.

They are driven only through PostgreSQL, Redis and the write-through mirror, and stopped by PID.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from tests.procs import CeleryProcess, celery_beat, celery_worker, wait_for
from tests.rabbitmq import amqp_vhost
from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.enums import TriggerState
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.sync import RedBeatMirror
from woow_scheduler.settings import Settings, load_settings

from .conftest import published, update_trigger

pytestmark = pytest.mark.slow


@pytest.fixture
def esettings(request: pytest.FixtureRequest, pg_url: str, redis_url: str, key_prefix: str) -> Iterator[Settings]:
    """Beat on Redis; the broker is Redis, or RabbitMQ (a vhost of the test's own) with ``indirect=["esettings"]``."""
    broker = getattr(request, "param", "redis")
    with amqp_vhost() if broker == "amqp" else nullcontext(None) as amqp_url:
        yield load_settings(
            database_url=pg_url,
            redis_url=redis_url,
            broker_url=amqp_url,
            key_prefix=key_prefix,
            queue=f"woow-{uuid.uuid4().hex[:6]}",
            beat_lock_timeout=4.0,
            bookkeeping_interval=0.5,
            reconcile_interval=2.0,
            heartbeat_interval=1.0,
        )


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def wf(db: Database) -> Workflow:
    with db.session() as s:
        w = Workflow(
            name=f"e2e-{uuid.uuid4().hex[:6]}", steps=[{"name": "hi", "type": "log", "config": {"message": "hi"}}]
        )
        s.add(w)
    return w


def add_trigger(db: Database, wf: Workflow, spec: dict[str, Any], **fields: Any) -> Trigger:
    with db.session() as s:
        t = Trigger(workflow_id=wf.id, name=f"t-{uuid.uuid4().hex[:6]}", type=spec["type"], spec=spec, **fields)
        s.add(t)
    return t


def fires(db: Database, trigger_id: uuid.UUID) -> list[datetime]:
    with db.session() as s:
        rows = s.scalars(select(Execution.scheduled_for).where(Execution.trigger_id == trigger_id)).all()
    return sorted(r for r in rows if r is not None)



@pytest.fixture
def worker(esettings: Settings, log_dir: Path) -> Iterator[CeleryProcess]:
    with celery_worker(esettings, log_dir=log_dir) as w:
        yield w


@pytest.mark.parametrize("esettings", ["redis", "amqp"], indirect=True)
def test_even_seconds_pause_resume_and_once(
    esettings: Settings, db: Database, wf: Workflow, worker: CeleryProcess, log_dir: Path
) -> None:
    cron = add_trigger(db, wf, {"type": "cron", "expression": "*/2 * * * * ?"})
    once_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    once = add_trigger(db, wf, {"type": "once", "run_at": once_at.isoformat()})
    mirror = RedBeatMirror(esettings, db)
    with celery_beat(esettings, "-S", "woow_scheduler.beat:WoowScheduler", log_dir=log_dir) as beat:
        wait_for(lambda: len(fires(db, cron.id)) >= 3, 20, "three cron fires")
        got = fires(db, cron.id)
        assert all(f.second % 2 == 0 and f.microsecond == 0 for f in got), got
        assert len(got) == len(set(got))
        assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(got)), got

        update_trigger(db, cron.id, state=TriggerState.PAUSED)
        mirror.triggers_changed([cron.id])
        paused_at = datetime.now(UTC)
        time.sleep(4.5)
        during = [f for f in fires(db, cron.id) if f > paused_at]
        assert during == [], "fires while paused"

        update_trigger(db, cron.id, state=TriggerState.NORMAL)
        mirror.triggers_changed([cron.id])
        resumed_at = datetime.now(UTC)
        wait_for(lambda: [f for f in fires(db, cron.id) if f > resumed_at], 10, "a fire after resume")
        time.sleep(0.5)
        after = [f for f in fires(db, cron.id) if f > paused_at]
        assert all(f > resumed_at - timedelta(seconds=1) for f in after), "catch-up fire for the pause"
        assert len(after) <= 2

        wait_for(lambda: fires(db, once.id), 15, "the once fire")
        assert fires(db, once.id) == [once_at]

        def complete() -> bool:
            with db.session() as s:
                t = s.get(Trigger, once.id)
                return t is not None and t.state == TriggerState.COMPLETE

        wait_for(complete, 10, "the once trigger to become COMPLETE")
        keys = Keys(esettings.key_prefix)
        client = redis.Redis.from_url(esettings.redis_url)
        assert not client.exists(keys.redbeat_entry(once.id))
        log = beat.log()
    assert fires(db, once.id) == [once_at]
    assert "Traceback" not in log, log


def _leader_pid(client: redis.Redis, keys: Keys) -> int | None:
    pid = client.hget(keys.beat_state, "pid")
    return int(pid) if pid else None


@pytest.mark.chaos
def test_failover_after_kill9_every_fire_exactly_once(
    esettings: Settings, db: Database, wf: Workflow, worker: CeleryProcess, log_dir: Path
) -> None:
    t = add_trigger(db, wf, {"type": "cron", "expression": "* * * * * ?"})
    keys = Keys(esettings.key_prefix)
    client = redis.Redis.from_url(esettings.redis_url, decode_responses=True)
    with (
        celery_beat(esettings, log_dir=log_dir, name="beat-a") as a,
        celery_beat(esettings, log_dir=log_dir, name="beat-b") as b,
    ):
        leader = wait_for(lambda: _leader_pid(client, keys), 15, "a leader")
        wait_for(lambda: len(fires(db, t.id)) >= 3, 15, "fires before the kill")
        active, standby = (a, b) if leader == a.pid else (b, a)
        assert leader == active.pid
        active.kill9()
        killed_at = time.monotonic()
        wait_for(lambda: _leader_pid(client, keys) == standby.pid, 15, "the standby to take over")
        takeover = time.monotonic() - killed_at
        last_before = max(fires(db, t.id))
        wait_for(lambda: max(fires(db, t.id)) >= last_before + timedelta(seconds=3), 15, "fires after failover")
        time.sleep(1.0)
        standby.stop()
    got = fires(db, t.id)
    span = int((got[-1] - got[0]).total_seconds()) + 1
    missing = sorted({got[0] + timedelta(seconds=i) for i in range(span)} - set(got))
    print(f"takeover after kill -9: {takeover:.2f} s (lock timeout {esettings.beat_lock_timeout} s)")
    assert takeover <= esettings.beat_lock_timeout + 2.0, takeover
    assert missing == [], f"fires lost in the failover window: {missing}"
    assert len(got) == len(set(got)) == span
    duplicates = worker.log().count("duplicate delivery ignored")
    assert duplicates <= 1, worker.log()


def test_misfire_policies_when_beat_was_down(esettings: Settings, db: Database, wf: Workflow, log_dir: Path) -> None:
    base = {"type": "cron", "expression": "* * * * * ?", "misfire_threshold": 2}
    once_now = add_trigger(db, wf, {**base, "misfire_policy": "fire_once_now"})
    skip = add_trigger(db, wf, {**base, "misfire_policy": "skip"})
    fire_all = add_trigger(db, wf, {**base, "misfire_policy": "fire_all", "max_catchup": 100})
    client = redis.Redis.from_url(esettings.redis_url, decode_responses=True)

    def by_trigger() -> dict[str, list[datetime]]:
        out: dict[str, list[datetime]] = {}
        for m in published(client, esettings):
            out.setdefault(m["trigger_id"], []).append(datetime.fromisoformat(m["scheduled_for"]))
        return out

    with celery_beat(esettings, log_dir=log_dir, name="first"):
        wait_for(lambda: len(by_trigger().get(str(fire_all.id), [])) >= 2, 15, "fires before the stop")
    time.sleep(6)  # beat down for longer than the 2 s threshold
    with celery_beat(esettings, log_dir=log_dir, name="second") as again:
        restarted = datetime.now(UTC)
        wait_for(
            lambda: any(f > restarted + timedelta(seconds=1) for f in by_trigger().get(str(once_now.id), [])),
            15,
            "regular fires after the restart",
        )
        log = again.log()
    got = by_trigger()

    def missing(ts: list[datetime]) -> int:
        assert len(ts) == len(set(ts))
        return int((max(ts) - min(ts)).total_seconds()) + 1 - len(ts)

    assert missing(got[str(fire_all.id)]) == 0  # every missed fire caught up
    m_once, m_skip = missing(got[str(once_now.id)]), missing(got[str(skip.id)])
    assert m_once >= 5  # one fire for the whole gap
    assert m_once - m_skip == 2  # skip still fires the on-time ones (threshold 2 s: three fires)
    assert "misfired" in log
    for ts in got.values():
        assert all(f.microsecond == 0 for f in ts)


def test_run_beat_entry_point_fires(esettings: Settings, db: Database, wf: Workflow, tmp_path: Path) -> None:
    """``woow beat`` calls ``run_beat(settings)``: a once trigger fires, the process stops on SIGTERM."""
    import subprocess
    import sys

    from tests.procs import child_env

    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    t = add_trigger(db, wf, {"type": "once", "run_at": run_at.isoformat()})
    code = "from woow_scheduler.scheduler.beat import run_beat; from woow_scheduler.settings import load_settings; "
    code += "run_beat(load_settings())"
    log = tmp_path / "run_beat.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=child_env(esettings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = redis.Redis.from_url(esettings.redis_url, decode_responses=True)
    try:
        msgs = wait_for(lambda: published(client, esettings), 20, "the once fire")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert [(m["trigger_id"], m["scheduled_for"]) for m in msgs] == [(str(t.id), run_at.isoformat())]
    assert proc.returncode is not None
    assert client.exists(Keys(esettings.key_prefix).redbeat_lock) == 0  # a clean stop releases the lock
