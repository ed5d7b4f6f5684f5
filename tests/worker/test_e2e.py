"""End to end with real worker processes: idempotency, concurrency policies, retries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery

from tests.procs import celery_worker, wait_for
from tests.worker.conftest import executions, make_trigger, make_workflow, send_fire, wait_final
from tests.worker.httpserver import scripted_server
from woow_scheduler.db import Database
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.messaging.publish import enqueue_manual_run
from woow_scheduler.settings import Settings

pytestmark = pytest.mark.slow


def test_same_fire_delivered_three_times_runs_once(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    wf = make_workflow(db, [{"name": "hello", "type": "log", "config": {"message": "hi"}}])
    tr = make_trigger(db, wf)
    fire = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    for _ in range(3):
        send_fire(app, wsettings, wf, tr, fire, user_id="u1")
    with celery_worker(wsettings, log_dir=log_dir) as worker:
        rows = wait_final(db, wf.id, 1)
        # a duplicate that meets the run still going is looked at again later (never dropped while
        # the run could still die); every duplicate ends ignored once the run is final
        wait_for(lambda: worker.log().count("duplicate delivery ignored") >= 2, 15, what="two duplicates ignored")
        rows = executions(db, wf.id)
        log = worker.log()
    assert len(rows) == 1, log
    assert rows[0].status == ExecutionStatus.SUCCEEDED
    assert rows[0].attempt == 1
    assert rows[0].steps[0]["output"] == {"message": "hi", "level": "info"}
    assert log.count("duplicate delivery ignored") == 2, log


def test_failed_run_is_retried_until_it_succeeds(app: Celery, db: Database, wsettings: Settings, log_dir: Path) -> None:
    with scripted_server([500, 500, 200]) as srv:
        wf = make_workflow(
            db,
            [{"name": "call", "type": "http", "config": {"url": srv.url + "/flaky"}}],
            max_retries=3,
            retry_delay=0.3,
            retry_backoff=True,
        )
        tr = make_trigger(db, wf)
        with celery_worker(wsettings, log_dir=log_dir, concurrency=1):
            send_fire(app, wsettings, wf, tr, datetime(2030, 1, 1, tzinfo=UTC))
            (row,) = wait_final(db, wf.id, 1)
        assert len(srv.requests) == 3
    assert row.status == ExecutionStatus.SUCCEEDED
    assert row.attempt == 3
    assert row.steps[0]["output"]["status"] == 200


def test_last_failure_is_final_and_celery_task_step_waits_for_a_result(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    failing = make_workflow(
        db,
        [
            {
                "name": "boom",
                "type": "python",
                "config": {"callable": "tests.worker.callables:fail_with", "args": ["no"]},
            }
        ],
        max_retries=1,
        retry_delay=0.2,
    )
    # celery_task steps reach only allow-listed tasks on allow-listed queues (never woow's own)
    steps_queue = f"{wsettings.queue}-steps"
    wsettings = wsettings.model_copy(
        update={"celery_task_names": ["tests.accumulate"], "celery_task_queues": [steps_queue]}
    )
    pinging = make_workflow(
        db,
        [
            {
                "name": "ping",
                "type": "celery_task",
                "config": {
                    "task": "tests.accumulate",
                    "args": [1, 2],
                    "kwargs": {"api_token": "zzz"},
                    "queue": steps_queue,
                    "wait": True,
                    "wait_timeout": 10,
                },
            }
        ],
    )
    with celery_worker(
        wsettings, "-Q", f"{wsettings.queue},{steps_queue}", "-I", "tests.worker.step_tasks",
        log_dir=log_dir, concurrency=2,
    ):
        enqueue_manual_run(app, db, wsettings, workflow=failing, user_id="alice")
        run_id = enqueue_manual_run(app, db, wsettings, workflow=pinging, user_id="bob")
        (bad,) = wait_final(db, failing.id, 1)
        (good,) = wait_final(db, pinging.id, 1)
    assert bad.status == ExecutionStatus.FAILED and bad.attempt == 2 and bad.trigger_id is None
    assert "RuntimeError: no" in (bad.error or "")
    assert good.id == run_id and good.user_id == "bob"
    assert good.status == ExecutionStatus.SUCCEEDED, good.error
    assert good.steps[0]["output"]["result"] == [1, 2]  # tests.accumulate returns its args
