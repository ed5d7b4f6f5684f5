"""End to end with real worker processes: idempotency, concurrency policies, retries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery

from tests.procs import celery_worker
from tests.worker.conftest import executions, make_trigger, make_workflow, wait_final
from woow_scheduler.db import Database
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.settings import Settings
from woow_scheduler.worker.dispatch import enqueue_fire

pytestmark = pytest.mark.slow


def test_same_fire_delivered_three_times_runs_once(
    app: Celery, db: Database, wsettings: Settings, log_dir: Path
) -> None:
    wf = make_workflow(db, [{"name": "hello", "type": "log", "config": {"message": "hi"}}])
    tr = make_trigger(db, wf)
    fire = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    for _ in range(3):
        enqueue_fire(
            app, wsettings, workflow_id=wf.id, workflow_name=wf.name, trigger_id=tr.id, user_id="u1", scheduled_for=fire
        )
    with celery_worker(wsettings, log_dir=log_dir) as worker:
        rows = wait_final(db, wf.id, 1)
        import time

        time.sleep(1.0)  # let the two duplicates be processed too
        rows = executions(db, wf.id)
        log = worker.log()
    assert len(rows) == 1, log
    assert rows[0].status == ExecutionStatus.SUCCEEDED
    assert rows[0].attempt == 1
    assert rows[0].steps[0]["output"] == {"message": "hi", "level": "info"}
    assert log.count("duplicate delivery ignored") == 2, log
