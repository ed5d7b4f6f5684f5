"""The fire journal's sweeper against real PostgreSQL and Redis: lost fires are published again."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery import Celery

from tests.worker.conftest import make_trigger, make_workflow
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Trigger
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.bookkeeping import drain_fired, fired_record, journal_member
from woow_scheduler.scheduler.reaper import resend_stale
from woow_scheduler.scheduler.sweeper import MAX_REPUBLISH, sweep_fires
from woow_scheduler.settings import Settings, load_settings
from woow_scheduler.worker import get_app

FIRE = datetime(2030, 8, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def ssettings(pg_url: str, redis_url: str, key_prefix: str) -> Settings:
    return load_settings(
        database_url=pg_url,
        redis_url=redis_url,
        key_prefix=key_prefix,
        queue=f"woow-{uuid.uuid4().hex[:6]}",
        visibility_timeout=30,
        fire_journal_grace=5,
    )


@pytest.fixture
def sapp(ssettings: Settings) -> Iterator[Celery]:
    application = get_app(ssettings)
    yield application
    application.close()


def _published(client: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    out = []
    for item in client.lrange(Keys(settings.key_prefix).broker_queue(settings.queue), 0, -1):  # type: ignore[union-attr]
        msg = json.loads(item)
        _args, kwargs, _embed = json.loads(base64.b64decode(msg["body"]))
        out.append(kwargs)
    return out


def test_a_fire_without_a_row_is_published_again_after_the_visibility_timeout(
    ssettings: Settings, sapp: Celery, db: Database, redis_client: redis.Redis
) -> None:
    keys = Keys(ssettings.key_prefix)
    wf = make_workflow(db, [])
    lost, arrived, gone = make_trigger(db, wf), make_trigger(db, wf), make_trigger(db, wf)
    now = datetime.now(UTC)
    long_ago = (now - timedelta(seconds=40)).timestamp()  # > visibility 30 + grace 5
    recent = (now - timedelta(seconds=10)).timestamp()
    members = {
        journal_member(str(lost.id), FIRE, str(wf.id), "ann"): long_ago,
        journal_member(str(lost.id), FIRE + timedelta(minutes=1), str(wf.id), "ann"): recent,
        journal_member(str(arrived.id), FIRE, str(wf.id), "ann"): long_ago,
        journal_member(str(gone.id), FIRE, str(wf.id), "ann"): long_ago,
    }
    redis_client.zadd(keys.fire_journal, members)
    with db.session() as s:
        s.add(Execution(workflow_id=wf.id, trigger_id=arrived.id, scheduled_for=FIRE, status=ExecutionStatus.SUCCEEDED))
    with db.session() as s:
        s.delete(s.get(Trigger, gone.id))

    result = sweep_fires(ssettings, db, redis_client, sapp, now=now)

    assert (result.arrived, result.republished, result.dropped, result.waiting) == (1, 1, 1, 1)
    (sent,) = _published(redis_client, ssettings)
    assert sent["trigger_id"] == str(lost.id) and sent["workflow_id"] == str(wf.id)
    assert sent["user_id"] == "ann" and sent["scheduled_for"] == FIRE.isoformat()
    left = redis_client.zrange(keys.fire_journal, 0, -1, withscores=True)
    assert len(left) == 2  # the re-published fire (waiting again, from now) and the recent one
    again = [m for m, sc in left if json.loads(m)["s"] == FIRE.isoformat()]
    assert len(again) == 1 and json.loads(again[0])["n"] == 1
    # nothing more until the next visibility window passes
    assert sweep_fires(ssettings, db, redis_client, sapp, now=now).republished == 0


def test_a_fire_is_given_up_after_max_republish(
    ssettings: Settings, sapp: Celery, db: Database, redis_client: redis.Redis
) -> None:
    keys = Keys(ssettings.key_prefix)
    wf = make_workflow(db, [])
    tr = make_trigger(db, wf)
    now = datetime.now(UTC)
    member = journal_member(str(tr.id), FIRE, str(wf.id), None, MAX_REPUBLISH)
    redis_client.zadd(keys.fire_journal, {member: (now - timedelta(hours=1)).timestamp()})
    assert sweep_fires(ssettings, db, redis_client, sapp, now=now).dropped == 1
    assert redis_client.zcard(keys.fire_journal) == 0
    assert _published(redis_client, ssettings) == []


def test_the_drain_journals_every_fired_time_with_its_payload(
    ssettings: Settings, db: Database, redis_client: redis.Redis
) -> None:
    keys = Keys(ssettings.key_prefix)
    wf = make_workflow(db, [])
    tr = make_trigger(db, wf)
    fires = (FIRE, FIRE + timedelta(seconds=1))
    record = fired_record(
        str(tr.id), fires, FIRE + timedelta(seconds=2), 1, {"workflow_id": str(wf.id), "user_id": "ann"}
    )
    redis_client.xadd(keys.fired, {"f": record})
    drain_fired(ssettings, db, redis_client)
    assert redis_client.xlen(keys.fired) == 0
    found = [json.loads(m) for m in redis_client.zrange(keys.fire_journal, 0, -1)]  # type: ignore[union-attr]
    members = sorted(found, key=lambda m: m["s"])
    assert members == [{"n": 0, "s": f.isoformat(), "t": str(tr.id), "u": "ann", "w": str(wf.id)} for f in fires]


def test_reaper_resends_a_retry_whose_message_never_came(
    ssettings: Settings, sapp: Celery, db: Database, redis_client: redis.Redis
) -> None:
    wf = make_workflow(db, [])
    now = datetime.now(UTC)
    overdue = now - timedelta(seconds=ssettings.visibility_timeout + ssettings.fire_journal_grace + 5)
    with db.session() as s:
        lost = Execution(workflow_id=wf.id, user_id="ann", status=ExecutionStatus.RETRYING, attempt=1, due_at=overdue)
        later = Execution(
            workflow_id=wf.id,
            user_id="ann",
            status=ExecutionStatus.RETRYING,
            attempt=1,
            due_at=now + timedelta(hours=1),
        )
        done = Execution(workflow_id=wf.id, status=ExecutionStatus.SUCCEEDED, attempt=1, due_at=overdue)
        s.add_all([lost, later, done])
    assert resend_stale(ssettings, db, sapp, now=now) == [lost.id]
    (sent,) = _published(redis_client, ssettings)
    assert sent["execution_id"] == str(lost.id) and sent["user_id"] == "ann" and sent["workflow_id"] == str(wf.id)
    assert resend_stale(ssettings, db, sapp, now=now) == []  # due again only after another window
