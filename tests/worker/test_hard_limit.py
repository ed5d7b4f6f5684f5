"""A run killed at Celery's hard time limit frees its workflow lock only once its process is gone.

Celery calls the task's ``on_failure`` in the worker's main process *before* billiard terminates the
pool child (SIGTERM, up to 0.1 s, SIGKILL).  Before: ``mark_killed`` recorded the row ``timed_out``
and deleted the lock right there, so the next fire of a ``forbid`` workflow could run while the
killed child was still in its step.  Now a thread waits until the process named in the lock value
is gone (:func:`woow_scheduler.worker.task.settle_killed`), then records the row and deletes the
lock (only while it still holds that value); within ``lock_ttl`` or never: nothing is touched.
Real PostgreSQL and Redis; the end-to-end test runs a real prefork worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import update

from tests.support.factories import make_trigger, make_workflow
from tests.support.procs import celery_worker, wait_for
from tests.worker.conftest import executions, send_fire
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.keys import Keys, lock_value
from woow_scheduler.messaging.app import TASK_EXECUTE
from woow_scheduler.messaging.payload import FirePayload
from woow_scheduler.settings import Settings
from woow_scheduler.worker.lock import NODE, parse_value
from woow_scheduler.worker.task import mark_killed

FIRE = datetime(2030, 10, 1, 8, 0, tzinfo=UTC)
STEPS = [{"name": "hi", "type": "log", "config": {"message": "x"}}]
IGNORE_TERM = "tests.worker.callables:ignore_term_and_sleep"


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing for the killed pool child (killed by the test, or at the end)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _running_row(db: Database, wf: Any, key: str) -> Execution:
    row_id = uuid.uuid4()
    with db.session() as s:
        row = Execution(
            id=row_id,
            workflow_id=wf.id,
            user_id="u",
            status=ExecutionStatus.RUNNING,
            lock_token=uuid.uuid4().hex,
            lock_key=key,
            lock_policy="forbid",
            fence=7,
            attempt=1,
        )
        s.add(row)
    return row


def _status(db: Database, row_id: uuid.UUID) -> ExecutionStatus:
    with db.session() as s:
        found = s.get(Execution, row_id)
        assert found is not None
        return found.status


class _Done:
    """Stands for the thread when ``mark_killed`` did everything before returning (the old code)."""

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        return None


def _kill(wf: Any, row: Execution, settings: Settings) -> threading.Thread | _Done:
    kwargs = FirePayload(workflow_id=wf.id, user_id="u", execution_id=row.id).to_kwargs()
    thread = mark_killed(settings, kwargs, "task-1", "TimeLimitExceeded(2,)")
    return thread if thread is not None else _Done()


def _setup(db: Database, settings: Settings, client: redis.Redis, holder: str) -> tuple[Any, Execution, str, str]:
    wf = make_workflow(db, STEPS)
    key = Keys(settings.key_prefix).workflow_lock(wf.id)
    row = _running_row(db, wf, key)
    value = lock_value(f"{row.lock_token}:{row.id}", 7, holder)
    client.set(key, value, px=60_000)
    return wf, row, key, value


def _fire(app: Celery, wf: Any, tr: Any, when: datetime) -> str:
    kwargs = FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=when).to_kwargs()
    outcome: str = app.tasks[TASK_EXECUTE].apply(kwargs=kwargs).get()["outcome"]
    return outcome


def test_the_lock_and_the_row_wait_for_the_holder_process_to_be_gone(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis, holder: subprocess.Popen[bytes]
) -> None:
    """Holder alive: nothing freed and the row still ``running``, so the next fire is ``skipped``
    (recording the row final at once would not do: a fire meeting a lock that names a finished
    execution takes it over as stale).  Holder killed (a zombie, not yet reaped, as the pool child
    is until the worker reaps it): row ``timed_out`` and lock deleted at once; the next fire runs."""
    wf, row, key, value = _setup(db, wsettings, redis_client, f"{holder.pid}@{NODE}")
    tr = make_trigger(db, wf)
    started = time.monotonic()
    thread = _kill(wf, row, wsettings)
    assert time.monotonic() - started < 0.5  # the caller (the worker's event loop) does not wait
    time.sleep(0.3)
    assert redis_client.get(key) == value
    assert _status(db, row.id) is ExecutionStatus.RUNNING
    assert _fire(app, wf, tr, FIRE) == "skipped"
    assert redis_client.get(key) == value
    assert thread.is_alive()
    os.kill(holder.pid, signal.SIGKILL)
    killed = time.monotonic()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - killed < 1.0
    assert holder.poll() is not None  # (reaped only now: the thread saw the zombie)
    assert redis_client.get(key) is None
    assert _status(db, row.id) is ExecutionStatus.TIMED_OUT
    assert _fire(app, wf, tr, FIRE + timedelta(seconds=1)) == "succeeded"


def test_a_lock_that_changed_meanwhile_is_not_touched(
    db: Database, wsettings: Settings, redis_client: redis.Redis, holder: subprocess.Popen[bytes]
) -> None:
    wf, row, key, _ = _setup(db, wsettings, redis_client, f"{holder.pid}@{NODE}")
    thread = _kill(wf, row, wsettings)
    time.sleep(0.2)
    other = lock_value(f"tok2:{uuid.uuid4()}", 8, f"{os.getpid()}@{NODE}")
    redis_client.set(key, other, px=60_000)
    holder.kill()
    thread.join(5)
    assert not thread.is_alive()
    assert redis_client.get(key) == other
    assert _status(db, row.id) is ExecutionStatus.TIMED_OUT


@pytest.mark.parametrize("whose", ["alive", "no pid", "another node"])
def test_a_holder_not_seen_gone_within_the_ttl_leaves_lock_and_row_alone(
    db: Database,
    wsettings: Settings,
    redis_client: redis.Redis,
    holder: subprocess.Popen[bytes],
    caplog: pytest.LogCaptureFixture,
    whose: str,
) -> None:
    """The lock runs out at its TTL once nobody renews it; the reaper records the row."""
    settings = wsettings.model_copy(update={"lock_ttl": 0.5})
    name = {"alive": f"{holder.pid}@{NODE}", "no pid": "", "another node": f"{holder.pid}@0123456789ab"}[whose]
    wf, row, key, value = _setup(db, settings, redis_client, name)
    if whose == "no pid":  # an older value: "<token>:<execution id>"
        value = f"{row.lock_token}:{row.id}"
        redis_client.set(key, value, px=60_000)
    if whose == "another node":
        holder.kill()  # a pid of this node that is gone means nothing for another node
        holder.wait()
    with caplog.at_level(logging.WARNING, logger="woow.worker"):
        thread = _kill(wf, row, settings)
        thread.join(5)
    assert not thread.is_alive()
    assert redis_client.get(key) == value
    assert _status(db, row.id) is ExecutionStatus.RUNNING
    warned = [r.getMessage() for r in caplog.records if "still holds its lock" in r.getMessage()]
    assert len(warned) == 1 and key in warned[0]


@pytest.mark.parametrize("lock", ["gone", "another run's"])
def test_a_run_that_no_longer_holds_its_lock_is_recorded_at_once(
    db: Database, wsettings: Settings, redis_client: redis.Redis, holder: subprocess.Popen[bytes], lock: str
) -> None:
    wf, row, key, _ = _setup(db, wsettings, redis_client, f"{holder.pid}@{NODE}")
    other = lock_value(f"tok2:{uuid.uuid4()}", 8, f"{holder.pid}@{NODE}")
    if lock == "gone":
        redis_client.delete(key)
    else:
        redis_client.set(key, other, px=60_000)
    thread = _kill(wf, row, wsettings)
    thread.join(2)
    assert not thread.is_alive()
    assert _status(db, row.id) is ExecutionStatus.TIMED_OUT
    assert redis_client.get(key) == (None if lock == "gone" else other)


# -- a real worker -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_child_killed_at_the_hard_time_limit_keeps_the_lock_until_it_is_gone(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis, log_dir: Path
) -> None:
    """A prefork worker with a 2 s hard time limit runs a step that ignores SIGTERM (so billiard's
    TERM, 0.1 s, KILL leaves it alive for 0.1 s after ``on_failure``).  Meanwhile the test fires the
    same ``forbid`` workflow again and again in-process.  Before: the lock was deleted (and the
    next fire ran) while the killed child was still alive.  Now: the lock keeps the killed run's
    value until its process is gone, then frees promptly and the next fire runs."""
    settings = wsettings.model_copy(update={"python_callables": [*wsettings.python_callables, IGNORE_TERM]})
    wf = make_workflow(db, [{"name": "stuck", "type": "python", "config": {"callable": IGNORE_TERM, "args": [60]}}])
    tr = make_trigger(db, wf)
    key = Keys(settings.key_prefix).workflow_lock(wf.id)
    task = app.tasks[TASK_EXECUTE]
    with celery_worker(settings, "--time-limit", "2", log_dir=log_dir, concurrency=1) as worker:
        send_fire(app, settings, wf, tr, FIRE)
        (first,) = wait_for(
            lambda: [r for r in executions(db, wf.id) if r.status == ExecutionStatus.RUNNING], 20, what="a running row"
        )
        value = redis_client.get(key)
        held = parse_value(value)
        assert held is not None and held.token == first.lock_token and held.node == NODE
        assert first.worker is not None and held.pid == int(first.worker.rsplit(":", 1)[1]) != worker.pid
        # the next fires run a quick step (the killed child keeps the definition it runs)
        with db.session() as s:
            s.execute(update(Workflow).where(Workflow.id == wf.id).values(steps=STEPS, updated_at=datetime.now(UTC)))

        violations: list[str] = []
        won: list[dict[str, Any]] = []
        stop = threading.Event()

        def racer() -> None:
            i = 0
            while not stop.is_set() and not won:
                i += 1
                kwargs = FirePayload(
                    workflow_id=wf.id, trigger_id=tr.id, user_id=None, scheduled_for=FIRE + timedelta(seconds=i)
                ).to_kwargs()
                result = task.apply(kwargs=kwargs).get()
                if result["outcome"] == "succeeded":
                    if not held.holder_dead():
                        violations.append(f"fire {i} ran while the killed child {held.pid} was alive")
                    won.append(result)
                time.sleep(0.002)

        thread = threading.Thread(target=racer, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not held.holder_dead() and time.monotonic() < deadline:
                now_value = redis_client.get(key)
                if now_value != value and not held.holder_dead():
                    violations.append(f"lock {now_value!r} instead of the killed run's while its child lived")
                    break
                time.sleep(0.001)  # leave the GIL to the racer
            if not violations:
                assert held.holder_dead(), "the pool child was never killed"
                wait_for(lambda: won or violations, 10, what="the next fire ran", interval=0.01)
        finally:
            stop.set()
            thread.join(10)
        log = worker.log()
    assert violations == [], log
    assert "Hard time limit (2" in log
    rows = {r.id: r for r in executions(db, wf.id)}
    assert rows[first.id].status == ExecutionStatus.TIMED_OUT
    assert "hard time limit" in (rows[first.id].error or "")
    (winner,) = [r for r in rows.values() if r.status == ExecutionStatus.SUCCEEDED]
    assert winner.fence is not None and first.fence is not None and winner.fence > first.fence
    assert redis_client.get(key) is None
