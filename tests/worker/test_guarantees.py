"""Fire guarantees under partial faults, with real worker processes, PostgreSQL and Redis (issue 13).

Each test reproduces a fault that broke a guarantee before: a pool child killed alone, a run frozen
past its lock TTL, a policy edited mid-run, duplicate deliveries racing a genuine fire, a message
naming another workflow's execution.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import delete, update

from tests.support.procs import celery_worker, children_named, proc_stat, process_gone, wait_for
from tests.worker.conftest import executions, make_trigger, make_workflow, send_fire, wait_final
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Trigger, Workflow
from woow_scheduler.enums import ConcurrencyPolicy, ExecutionStatus, TriggerState
from woow_scheduler.keys import Keys
from woow_scheduler.messaging.app import TASK_EXECUTE
from woow_scheduler.messaging.payload import FirePayload
from woow_scheduler.scheduler.reaper import reap_lost_runs
from woow_scheduler.settings import Settings
from woow_scheduler.worker.lock import NODE

pytestmark = pytest.mark.slow

FIRE = datetime(2030, 7, 1, 9, 0, tzinfo=UTC)


def _running(db: Database, workflow_id: uuid.UUID) -> list[Execution]:
    return [r for r in executions(db, workflow_id) if r.status == ExecutionStatus.RUNNING]


def _pid(row: Execution) -> int:
    assert row.worker
    return int(row.worker.rsplit(":", 1)[1])


def test_pool_child_killed_alone_is_taken_over_promptly(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    # a run longer than the lock TTL (3 s): the dead child's lock would stay alive for a while
    wf = make_workflow(db, [{"name": "long", "type": "sleep", "config": {"seconds": 4}}])
    tr = make_trigger(db, wf)
    with celery_worker(wsettings, log_dir=log_dir, concurrency=1) as worker:
        send_fire(app, wsettings, wf, tr, FIRE)
        (first,) = wait_for(lambda: _running(db, wf.id), 20, what="a running row")
        child = _pid(first)
        assert child != worker.pid  # the pool child, not the worker's main process
        os.kill(child, signal.SIGKILL)
        killed = time.monotonic()
        (row,) = wait_final(db, wf.id, 1, timeout=wsettings.lock_ttl + 10 + 4)
        took = time.monotonic() - killed
        log = worker.log()
        assert worker.proc is not None and worker.proc.poll() is None  # the main process lived on
    assert row.status == ExecutionStatus.SUCCEEDED, (row.error, log)
    assert row.lock_token != first.lock_token and row.fence is not None and first.fence is not None
    assert row.fence > first.fence
    assert "took over a stale execution" in log
    assert took < wsettings.lock_ttl + 10 + 4
    assert len(executions(db, wf.id)) == 1


def test_a_run_frozen_past_its_lease_is_recorded_lock_lost_never_succeeded(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    wf = make_workflow(
        db,
        [
            {"name": "first", "type": "sleep", "config": {"seconds": 2}},
            {"name": "second", "type": "log", "config": {"message": "after the stall"}},
        ],
    )
    tr = make_trigger(db, wf)
    # the frozen run's message stays unacked for ~9 s (6 s frozen + the next fire's run): past the
    # fixture's 8 s visibility timeout the broker would redeliver it and the redelivery would take
    # the stale run over (a legitimate ending, but not the one this test is about)
    wsettings = wsettings.model_copy(update={"visibility_timeout": 60})
    with celery_worker(wsettings, log_dir=log_dir, concurrency=2) as worker:
        send_fire(app, wsettings, wf, tr, FIRE)
        (stalled,) = wait_for(lambda: _running(db, wf.id), 20, what="a running row")
        child = _pid(stalled)
        # freeze it inside its 2 s first step, not between the claim and that step (under load the
        # running row can be seen before the step starts; the run would then stop before 'first')
        time.sleep(0.5)
        os.kill(child, signal.SIGSTOP)
        try:
            time.sleep(2 * wsettings.lock_ttl)  # its lease expires; the next fire takes the lock
            send_fire(app, wsettings, wf, tr, FIRE + timedelta(minutes=1))
            wait_for(
                lambda: [r for r in executions(db, wf.id) if r.scheduled_for != FIRE and r.status.is_final],
                20,
                what="the next fire finished",
            )
        finally:
            os.kill(child, signal.SIGCONT)
        rows = wait_final(db, wf.id, 2, timeout=20)
        log = worker.log()
    by_fire = {r.scheduled_for: r for r in rows}
    first, nxt = by_fire[FIRE], by_fire[FIRE + timedelta(minutes=1)]
    assert nxt.status == ExecutionStatus.SUCCEEDED, nxt.error
    assert first.status == ExecutionStatus.LOCK_LOST, (first.status, first.error, log)
    assert "stopped before step 'second'" in (first.error or "")
    assert [s["status"] for s in first.steps] == ["succeeded", "skipped"]
    assert nxt.fence is not None and first.fence is not None and nxt.fence > first.fence


def test_a_step_holding_the_gil_past_the_lock_ttl_keeps_its_lease(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    # a C call that keeps the GIL for over 2x the lock TTL: the pool child's renewal thread cannot run
    # meanwhile, so only its backup renewer process (worker/backup.py) keeps the lease alive
    hold = int(2 * wsettings.lock_ttl) + 1  # the next fire, sent at TTL + 0.5 s, must come during the hold
    wf = make_workflow(
        db,
        [
            {
                "name": "hold",
                "type": "python",
                "config": {"callable": "tests.worker.callables:hold_gil", "args": [hold]},
            },
            {"name": "after", "type": "log", "config": {"message": "after the hold"}},
        ],
    )
    tr = make_trigger(db, wf)
    with celery_worker(wsettings, log_dir=log_dir, concurrency=2) as worker:
        send_fire(app, wsettings, wf, tr, FIRE)
        (held,) = wait_for(lambda: _running(db, wf.id), 20, what="a running row")
        (backup,) = children_named(_pid(held), "woow-renewer")
        # past the TTL a starved lease has expired: the next fire would take the lock and run beside it
        time.sleep(wsettings.lock_ttl + 0.5)
        send_fire(app, wsettings, wf, tr, FIRE + timedelta(minutes=1))
        rows = wait_final(db, wf.id, 2, timeout=hold + 20)
        log = worker.log()
    # the warm shutdown ended the pool children, and each reaped its backup (no zombie left behind)
    assert proc_stat(backup) is None, proc_stat(backup)
    by_fire = {r.scheduled_for: r for r in rows}
    first, nxt = by_fire[FIRE], by_fire[FIRE + timedelta(minutes=1)]
    assert first.status == ExecutionStatus.SUCCEEDED, (first.status, first.error, log)
    assert [s["status"] for s in first.steps] == ["succeeded", "succeeded"]
    span = first.steps[0]["output"]
    assert span["ended"] - span["started"] >= hold - 0.1  # the GIL really was held that long
    assert first.fence == held.fence  # never lost, never re-taken
    # the next fire met the lock still held by the first run: skipped by `forbid`, never run beside it
    assert nxt.status == ExecutionStatus.SKIPPED, (nxt.status, nxt.error, log)
    assert span["started"] < nxt.created_at.timestamp() < span["ended"]  # it came during the hold
    assert log.count("execution started") == 1, log
    assert "lock lost" not in log


def test_the_backup_renewer_dies_with_its_pool_child_and_the_lock_then_expires(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis, log_dir: Path
) -> None:
    ttl = 1.5
    settings = wsettings.model_copy(update={"lock_ttl": ttl})
    wf = make_workflow(
        db,
        [{"name": "hold", "type": "python", "config": {"callable": "tests.worker.callables:hold_gil", "args": [60]}}],
    )
    tr = make_trigger(db, wf)
    key = Keys(settings.key_prefix).workflow_lock(wf.id)
    with celery_worker(settings, log_dir=log_dir, concurrency=1) as worker:
        send_fire(app, settings, wf, tr, FIRE)
        (running,) = wait_for(lambda: _running(db, wf.id), 20, what="a running row")
        child = _pid(running)
        (backup,) = wait_for(lambda: children_named(child, "woow-renewer"), 5, what="the pool child's backup renewer")
        time.sleep(ttl + 0.5)  # the GIL is held: only the backup renews the lease
        value = redis_client.get(key)
        assert value is not None and value.endswith(f":{child}@{NODE}") and f":{running.id}:" in value
        # freeze the worker's main process, so that no new pool child takes the redelivered fire over
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            os.kill(child, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(lambda: process_gone(backup), 2, what="the backup renewer gone", interval=0.02)
            last = redis_client.pttl(key)
            while redis_client.get(key) == value:  # never extended again: it runs out
                left = redis_client.pttl(key)
                assert left <= last + 20, f"the dead run's lock was renewed ({last} -> {left} ms)"
                assert time.monotonic() - killed < ttl + 0.5, "the dead run's lock outlived its TTL"
                last = left
                time.sleep(0.02)
            assert redis_client.get(key) is None
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        worker.kill9()


def test_policy_edited_mid_run_does_not_start_a_second_copy(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    wf = make_workflow(db, [{"name": "s", "type": "sleep", "config": {"seconds": 4}}])
    tr = make_trigger(db, wf)
    with celery_worker(wsettings, log_dir=log_dir, concurrency=2) as worker:
        send_fire(app, wsettings, wf, tr, FIRE)
        (running,) = wait_for(lambda: _running(db, wf.id), 20, what="a running row")
        assert running.lock_policy == "forbid" and running.lock_key == Keys(wsettings.key_prefix).workflow_lock(wf.id)
        with db.session() as s:
            s.execute(
                update(Workflow)
                .where(Workflow.id == wf.id)
                .values(concurrency=ConcurrencyPolicy.ALLOW, updated_at=datetime.now(UTC))
            )
        send_fire(app, wsettings, wf, tr, FIRE)  # the same fire again (a redelivery, a failover)
        (row,) = wait_final(db, wf.id, 1, timeout=20)
        wait_for(lambda: "duplicate delivery ignored" in worker.log(), 15, what="the duplicate ignored")
        log = worker.log()
    assert row.status == ExecutionStatus.SUCCEEDED and row.attempt == 1
    assert row.lock_token == running.lock_token
    assert "took over" not in log
    assert log.count("execution started") == 1, log


def test_reaper_reads_the_pinned_lock_not_todays_policy(
    wsettings: Settings, db: Database, redis_client: redis.Redis
) -> None:
    wf = make_workflow(db, [])
    keys = Keys(wsettings.key_prefix)
    now = datetime.now(UTC)
    old = now - timedelta(seconds=wsettings.visibility_timeout + wsettings.lock_ttl + 120)
    with db.session() as s:
        row = Execution(
            workflow_id=wf.id,
            status=ExecutionStatus.RUNNING,
            lock_token="tok",
            lock_key=keys.workflow_lock(wf.id),
            lock_policy="forbid",
            fence=7,
            attempt=1,
        )
        s.add(row)
    with db.session() as s:
        s.execute(update(Execution).where(Execution.id == row.id).values(updated_at=old))
        s.execute(update(Workflow).where(Workflow.id == wf.id).values(concurrency=ConcurrencyPolicy.ALLOW))
    redis_client.set(keys.workflow_lock(wf.id), f"tok:{row.id}:7:1@x", px=60_000)  # a long run, alive
    assert reap_lost_runs(wsettings, db, redis_client, now=now) == []
    (kept,) = executions(db, wf.id)
    assert kept.status == ExecutionStatus.RUNNING


def _apply(app: Celery, payload: FirePayload) -> dict[str, Any]:
    result: dict[str, Any] = app.tasks[TASK_EXECUTE].apply(kwargs=payload.to_kwargs()).get()
    return result


def test_duplicate_bursts_never_make_a_genuine_fire_skipped(app: Celery, db: Database) -> None:
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    old = FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE)
    assert _apply(app, old)["outcome"] == "succeeded"
    for k in range(1, 9):
        genuine = FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE + timedelta(hours=k))
        start = threading.Barrier(13)
        results: list[dict[str, Any]] = []

        def deliver(p: FirePayload, barrier: threading.Barrier = start, out: list[dict[str, Any]] = results) -> None:
            barrier.wait()
            out.append(_apply(app, p))

        threads = [threading.Thread(target=deliver, args=(old,)) for _ in range(12)]
        threads.insert(k % 12, threading.Thread(target=deliver, args=(genuine,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        outcomes = sorted(r["outcome"] for r in results)
        assert outcomes == ["duplicate"] * 12 + ["succeeded"], outcomes
    assert {r.status for r in executions(db, wf.id)} == {ExecutionStatus.SUCCEEDED}


def test_a_message_naming_another_workflows_execution_writes_nothing(app: Celery, db: Database) -> None:
    mine = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "mine"}}])
    theirs = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "theirs"}}])
    with db.session() as s:
        victim = Execution(workflow_id=theirs.id, user_id="bob", status=ExecutionStatus.QUEUED)
        s.add(victim)
    forged = FirePayload(workflow_id=mine.id, user_id="bob", execution_id=victim.id)
    result = _apply(app, forged)
    assert result["outcome"] == "dropped" and "another workflow" in result["reason"]
    other_user = FirePayload(workflow_id=theirs.id, user_id="mallory", execution_id=victim.id)
    result = _apply(app, other_user)
    assert result["outcome"] == "dropped" and "another user" in result["reason"]
    (row,) = executions(db, theirs.id)
    assert row.status == ExecutionStatus.QUEUED and row.attempt == 0 and row.worker is None
    assert executions(db, mine.id) == []


def test_a_fire_meeting_a_holder_without_a_row_runs_once_the_lock_is_given_back(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis
) -> None:
    """A holder that has no row (a duplicate delivery whose claim insert found its fire's row, a
    paused trigger's fire) gives the lock back after one round trip: a genuine fire that met it
    runs then, not ``skipped`` behind an execution that never existed (nor after waiting 2 s)."""
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    key = Keys(wsettings.key_prefix).workflow_lock(wf.id)
    ghost = uuid.uuid4()  # the holder's execution id: no row will ever have it
    redis_client.set(key, f"tok:{ghost}:1:{os.getpid()}@{NODE}", px=60_000)
    out: list[dict[str, Any]] = []
    fire = FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE)
    t = threading.Thread(target=lambda: out.append(_apply(app, fire)))
    started = time.monotonic()
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), out  # it waits for the holder instead of recording skipped at once
    redis_client.delete(key)  # the holder gives the lock back without a row
    t.join(10)
    assert out and out[0]["outcome"] == "succeeded", out
    assert time.monotonic() - started < 1.5  # not the 2 s settle bound
    (row,) = executions(db, wf.id)
    assert row.status == ExecutionStatus.SUCCEEDED and row.attempt == 1


def test_a_fire_of_a_deleted_trigger_is_dropped_once_not_retried(app: Celery, db: Database) -> None:
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    with db.session() as s:
        s.execute(delete(Trigger).where(Trigger.id == tr.id))
    result = _apply(app, FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE))
    assert result["outcome"] == "dropped" and result["reason"] == "trigger no longer exists"
    assert executions(db, wf.id) == []


def test_a_fire_of_a_paused_trigger_is_recorded_skipped_not_run(app: Celery, db: Database) -> None:
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    with db.session() as s:
        s.execute(update(Trigger).where(Trigger.id == tr.id).values(state=TriggerState.PAUSED))
    result = _apply(app, FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE))
    assert result["outcome"] == "skipped"
    (row,) = executions(db, wf.id)
    assert row.status == ExecutionStatus.SKIPPED and "trigger paused" in (row.error or "")
    assert row.steps == [] and row.started_at is None


def test_an_outcome_whose_commit_answer_was_lost_is_read_back(
    app: Celery, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from woow_scheduler.worker import history

    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    real = history.transition
    lost_replies: list[uuid.UUID] = []

    def reply_lost(conn: Any, execution_id: uuid.UUID, **kw: Any) -> bool:
        done = real(conn, execution_id, **kw)
        if kw["values"].get("status") == ExecutionStatus.SUCCEEDED and not lost_replies:
            lost_replies.append(execution_id)  # PostgreSQL committed; the answer never arrived
            raise OperationalError("UPDATE executions ...", {}, Exception("server closed the connection"))
        return done

    monkeypatch.setattr(history, "transition", reply_lost)
    result = _apply(app, FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE))
    assert lost_replies, "the fault was not injected"
    assert result["outcome"] == "succeeded", result  # not mistaken for a takeover ("lost")
    (row,) = executions(db, wf.id)
    assert row.status == ExecutionStatus.SUCCEEDED


def test_a_duplicate_meeting_its_own_fire_between_lock_and_insert_is_not_recorded_skipped(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis
) -> None:
    """Two deliveries of one new fire: the first took the lock and has not inserted its row yet.
    The second used to insert a ``skipped`` row at once, which won the insert: the fire never ran
    and history named an execution that never existed (seen in CI as a flaky
    test_same_fire_delivered_three_times_runs_once)."""
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    keys = Keys(wsettings.key_prefix)
    first = uuid.uuid4()  # the first delivery's execution id: it holds the lock, its row is not there yet
    redis_client.set(keys.workflow_lock(wf.id), f"tok:{first}:7:1@x", px=60_000)
    result: dict[str, Any] = {}
    second = threading.Thread(
        target=lambda: result.update(
            _apply(app, FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=FIRE))
        )
    )
    second.start()
    time.sleep(0.5)  # the second delivery meets the held lock meanwhile
    with db.session() as s:  # the first delivery's insert lands (its run then ends)
        s.add(
            Execution(
                id=first,
                workflow_id=wf.id,
                trigger_id=tr.id,
                user_id="u",
                scheduled_for=FIRE,
                status=ExecutionStatus.SUCCEEDED,
                finished_at=datetime.now(UTC),
                lock_token="tok",
                lock_key=keys.workflow_lock(wf.id),
                lock_policy="forbid",
                fence=7,
                attempt=1,
            )
        )
    second.join(30)
    assert not second.is_alive()
    (row,) = executions(db, wf.id)
    assert (row.id, row.status) == (first, ExecutionStatus.SUCCEEDED)
    assert result["outcome"] == "duplicate", result
