"""A workflow lock left naming a finished execution (docs/reliability.md, "A lock can come back after
a Redis failover"): a release lost, or undone when Sentinel promoted a replica that had not seen it.

The next fire takes such a lock over (compare-and-set, new fence) instead of being recorded
``skipped`` until the key's TTL runs out; a lock naming an active execution still makes it skip,
and a lock that changed since it was read is never touched.  Real PostgreSQL and Redis, the task
run in-process through Celery's ``apply()``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import update

from tests.support.factories import make_trigger, make_workflow
from tests.worker.conftest import executions
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution
from woow_scheduler.enums import ConcurrencyPolicy, ExecutionStatus
from woow_scheduler.keys import Keys
from woow_scheduler.messaging.app import TASK_EXECUTE
from woow_scheduler.messaging.payload import FirePayload
from woow_scheduler.settings import Settings
from woow_scheduler.worker import history as h
from woow_scheduler.worker.lock import WorkflowLock, holder_id

FIRE = datetime(2030, 9, 1, 6, 0, tzinfo=UTC)
STEPS = [{"name": "hi", "type": "log", "config": {"message": "x"}}]
FINAL = [s for s in ExecutionStatus if s.is_final]
ACTIVE = [s for s in ExecutionStatus if not s.is_final]


def _apply(app: Celery, payload: FirePayload) -> dict[str, Any]:
    result: dict[str, Any] = app.tasks[TASK_EXECUTE].apply(kwargs=payload.to_kwargs()).get()
    return result


def _fire(wf: Any, tr: Any, when: datetime) -> FirePayload:
    return FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=when)


def _set_status(db: Database, row_id: uuid.UUID, status: ExecutionStatus) -> None:
    with db.session() as s:
        s.execute(update(Execution).where(Execution.id == row_id).values(status=status))


def _finished_run_with_its_lock_back(
    app: Celery, db: Database, redis_client: redis.Redis, key: str, wf: Any, tr: Any
) -> tuple[Execution, str]:
    """A first fire that ran and released its lock; then its lock comes back as it was (what a
    failover to a replica that had not seen the release does).  Returns its row and that value."""
    assert _apply(app, _fire(wf, tr, FIRE))["outcome"] == "succeeded"
    (first,) = executions(db, wf.id)
    assert first.fence is not None and redis_client.get(key) is None
    value = f"{first.lock_token}:{first.id}:{first.fence}:{holder_id()}"  # its process is alive
    redis_client.set(key, value, px=60_000)
    return first, value


@pytest.mark.parametrize("status", FINAL, ids=[s.value for s in FINAL])
def test_a_lock_naming_a_finished_execution_is_taken_over_by_the_next_fire(
    app: Celery,
    db: Database,
    wsettings: Settings,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    status: ExecutionStatus,
) -> None:
    """Before: the next fire was recorded ``skipped`` (lock held by the finished execution) until
    the key's TTL ran out (60 s with the default lock_ttl)."""
    wf = make_workflow(db, STEPS)
    tr = make_trigger(db, wf)
    key = Keys(wsettings.key_prefix).workflow_lock(wf.id)
    first, stale = _finished_run_with_its_lock_back(app, db, redis_client, key, wf, tr)
    _set_status(db, first.id, status)  # every way a row ends: its outcome, the reaper, the hard limit
    with caplog.at_level(logging.WARNING, logger="woow.worker"):
        result = _apply(app, _fire(wf, tr, FIRE + timedelta(seconds=1)))
    assert result["outcome"] == "succeeded", result
    rows = executions(db, wf.id)
    assert [r.status for r in rows] == [status, ExecutionStatus.SUCCEEDED]
    second = rows[1]
    # a new fence, from the acquire
    assert second.fence is not None and first.fence is not None and second.fence > first.fence
    assert second.lock_token != first.lock_token
    assert redis_client.get(key) is None  # the new run owned the key: its release deleted it
    taken = [r.getMessage() for r in caplog.records if "stale lock taken over" in r.getMessage()]
    assert len(taken) == 1 and key in taken[0] and stale in taken[0]
    assert [r.levelno for r in caplog.records if "stale lock" in r.getMessage()] == [logging.WARNING]


@pytest.mark.parametrize("status", ACTIVE, ids=[s.value for s in ACTIVE])
def test_a_lock_naming_an_active_execution_still_makes_a_fire_skip(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis, status: ExecutionStatus
) -> None:
    wf = make_workflow(db, STEPS)
    tr = make_trigger(db, wf)
    key = Keys(wsettings.key_prefix).workflow_lock(wf.id)
    first, value = _finished_run_with_its_lock_back(app, db, redis_client, key, wf, tr)
    _set_status(db, first.id, status)
    result = _apply(app, _fire(wf, tr, FIRE + timedelta(seconds=1)))
    assert result["outcome"] == "skipped", result
    second = executions(db, wf.id)[1]
    assert second.status == ExecutionStatus.SKIPPED and str(first.id) in (second.error or "")
    assert redis_client.get(key) == value  # untouched


def test_a_lock_that_changed_after_its_holder_was_looked_up_is_not_touched(
    app: Celery,
    db: Database,
    wsettings: Settings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stale holder's row is read finished; before the take-over another run takes the lock
    (its TTL ran out, the key was freed by hand): the compare-and-set finds another value and
    leaves it, and the fire is skipped naming the run that holds the lock now."""
    wf = make_workflow(db, STEPS)
    tr = make_trigger(db, wf)
    key = Keys(wsettings.key_prefix).workflow_lock(wf.id)
    first, _ = _finished_run_with_its_lock_back(app, db, redis_client, key, wf, tr)
    assert first.fence is not None
    other = uuid.uuid4()  # the run that takes the lock meanwhile: running, with a row
    with db.session() as s:
        s.add(
            Execution(
                id=other,
                workflow_id=wf.id,
                trigger_id=tr.id,
                user_id="u",
                scheduled_for=FIRE + timedelta(seconds=5),
                status=ExecutionStatus.RUNNING,
                lock_token="tok2",
                lock_key=key,
                lock_policy="forbid",
                fence=first.fence + 10,
                attempt=1,
            )
        )
    newer = f"tok2:{other}:{first.fence + 10}:{holder_id()}"
    real = h.get_execution
    looked: list[uuid.UUID] = []

    def look_then_change(conn: Any, execution_id: uuid.UUID) -> h.ExecRow | None:
        row = real(conn, execution_id)
        if execution_id == first.id and not looked:
            redis_client.set(key, newer, px=60_000)  # between the look-up and the take-over
        looked.append(execution_id)
        return row

    monkeypatch.setattr(h, "get_execution", look_then_change)
    result = _apply(app, _fire(wf, tr, FIRE + timedelta(seconds=1)))
    assert looked and looked[0] == first.id
    assert result["outcome"] == "skipped", result
    assert redis_client.get(key) == newer  # neither deleted nor replaced
    skipped = [r for r in executions(db, wf.id) if r.status == ExecutionStatus.SKIPPED]
    assert len(skipped) == 1 and str(other) in (skipped[0].error or "")


def test_a_frozen_holder_marked_finished_that_resumes_cannot_renew_or_take_the_lock_back(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis
) -> None:
    """The holder still has its handle (a run frozen while its row was marked ``failed`` by the
    reaper or ``lock_lost``): once the next fire took the lock over, the holder's renewal fails --
    the key holds another value, then is gone with the fence counter moved on -- so it stops at
    its next step boundary and only one of the two is ever recorded holding the lock."""
    wf = make_workflow(db, STEPS)
    tr = make_trigger(db, wf)
    keys = Keys(wsettings.key_prefix)
    first, _ = _finished_run_with_its_lock_back(app, db, redis_client, keys.workflow_lock(wf.id), wf, tr)
    redis_client.delete(keys.workflow_lock(wf.id))
    frozen = WorkflowLock(
        redis_client, keys.workflow_lock(wf.id), 30, owner=str(first.id), fence=keys.workflow_fence(wf.id)
    )
    assert frozen.acquire()
    _set_status(db, first.id, ExecutionStatus.FAILED)  # the reaper's verdict while it was frozen
    assert _apply(app, _fire(wf, tr, FIRE + timedelta(seconds=1)))["outcome"] == "succeeded"
    assert frozen.renew() is False and frozen.check() is not None
    assert redis_client.get(keys.workflow_lock(wf.id)) is None  # not taken back with a new fence
    assert frozen.release() is False
    running = [r for r in executions(db, wf.id) if r.status == ExecutionStatus.RUNNING]
    assert running == []


def test_an_ad_hoc_run_meeting_a_stale_lock_runs_instead_of_being_skipped(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis
) -> None:
    """The claim of an existing (queued) row takes a stale lock over too (before: ``skipped``)."""
    wf = make_workflow(db, STEPS)
    tr = make_trigger(db, wf)
    key = Keys(wsettings.key_prefix).workflow_lock(wf.id)
    first, _ = _finished_run_with_its_lock_back(app, db, redis_client, key, wf, tr)
    result = _apply(app, FirePayload(workflow_id=wf.id, user_id="u"))
    assert result["outcome"] == "succeeded", result
    rows = executions(db, wf.id)
    assert [r.status for r in rows] == [ExecutionStatus.SUCCEEDED, ExecutionStatus.SUCCEEDED]
    assert rows[1].fence is not None and first.fence is not None and rows[1].fence > first.fence
    assert redis_client.get(key) is None


def test_a_queue_fire_meeting_a_stale_lock_runs_without_waiting(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis
) -> None:
    """``queue`` takes the same workflow lock as ``forbid``: a stale one is taken over as well
    (before: the fire waited for it, and with a max_queue_wait below the TTL ended ``skipped``)."""
    wf = make_workflow(db, STEPS, concurrency=ConcurrencyPolicy.QUEUE, max_queue_wait=0.3)
    tr = make_trigger(db, wf)
    key = Keys(wsettings.key_prefix).workflow_lock(wf.id)
    first, _ = _finished_run_with_its_lock_back(app, db, redis_client, key, wf, tr)
    result = _apply(app, _fire(wf, tr, FIRE + timedelta(seconds=1)))
    assert result["outcome"] == "succeeded", result
    rows = executions(db, wf.id)
    assert [r.status for r in rows] == [ExecutionStatus.SUCCEEDED, ExecutionStatus.SUCCEEDED]
    assert rows[1].fence is not None and first.fence is not None and rows[1].fence > first.fence
