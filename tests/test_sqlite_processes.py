"""The embedded mode's processes: real beat and worker on SQLite (what `make demo` runs), with the
beat's maintenance (incremental and full reconcile, heartbeat, bookkeeping) running every second."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.procs import celery_beat, celery_worker, wait_for
from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.settings import load_settings

pytestmark = pytest.mark.slow


def test_beat_and_worker_on_sqlite_fire_and_reconcile_without_errors(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = load_settings(database_url=sqlite_url, redis_url=redis_url, key_prefix=key_prefix,
                             queue=f"sq-{uuid.uuid4().hex[:6]}", beat_lock_timeout=4.0, heartbeat_interval=1.0,
                             reconcile_interval=1.0, full_reconcile_interval=3.0, bookkeeping_interval=0.5)
    db = Database(sqlite_url)
    upgrade(db)
    with db.session() as s:
        wf = Workflow(name="sqlite-demo", steps=[{"name": "hi", "type": "log", "config": {"message": "hi"}}])
        s.add(wf)
        s.flush()
        tr = Trigger(workflow_id=wf.id, name="every-2s", type="cron",
                     spec={"type": "cron", "expression": "*/2 * * * * ?"})
        s.add(tr)
    logs = tmp_path / "logs"

    def done() -> list[Execution]:
        with db.session() as s:
            return list(s.scalars(select(Execution).where(Execution.status == ExecutionStatus.SUCCEEDED)).all())

    with celery_worker(settings, "-c", "1", log_dir=logs, concurrency=1) as worker, \
            celery_beat(settings, log_dir=logs) as beat:
        wait_for(lambda: len(done()) >= 4, 40, "four succeeded fires on SQLite")
        # a trigger added while beat runs reaches RedBeat through the incremental reconcile only
        with db.session() as s:
            late = Trigger(workflow_id=wf.id, name="late", type="cron",
                           spec={"type": "cron", "expression": "* * * * * ?"})
            s.add(late)
        wait_for(lambda: any(e.trigger_id == late.id for e in done()), 20, "a fire of the trigger added later")
        beat_log, worker_log = beat.log(), worker.log()
    db.dispose()
    fires = sorted(e.scheduled_for for e in done() if e.trigger_id == tr.id and e.scheduled_for)
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(fires)), fires
    for name, log in (("beat", beat_log), ("worker", worker_log)):
        assert "Traceback" not in log and "naive datetime" not in log, f"{name}:\n{log[-4000:]}"
