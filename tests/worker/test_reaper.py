from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.reaper import reap_lost_runs
from woow_scheduler.settings import Settings


def test_reaper_finishes_only_dead_old_runs(settings: Settings, db: Database, redis_client: redis.Redis) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(seconds=settings.visibility_timeout + settings.lock_ttl + 120)
    with db.session() as s:
        wf = Workflow(name="reap")
        s.add(wf)
        s.flush()
        dead = Execution(
            workflow_id=wf.id, status=ExecutionStatus.RUNNING, lock_token="t-dead", attempt=1, updated_at=old
        )
        alive = Execution(
            workflow_id=wf.id, status=ExecutionStatus.RUNNING, lock_token="t-alive", attempt=1, updated_at=old
        )
        young = Execution(
            workflow_id=wf.id, status=ExecutionStatus.RUNNING, lock_token="t-young", attempt=1, updated_at=now
        )
        done = Execution(workflow_id=wf.id, status=ExecutionStatus.SUCCEEDED, attempt=1, updated_at=old)
        s.add_all([dead, alive, young, done])
    # `alive` is the run whose worker still renews the workflow lock
    redis_client.set(Keys(settings.key_prefix).workflow_lock(wf.id), f"t-alive:{alive.id}", px=60_000)

    # onupdate would move updated_at: set it back explicitly for the old rows
    from sqlalchemy import update

    with db.session() as s:
        s.execute(update(Execution).where(Execution.id.in_([dead.id, alive.id, done.id])).values(updated_at=old))

    assert reap_lost_runs(settings, db, redis_client, now=now) == [dead.id]
    with db.session() as s:
        row = s.get(Execution, dead.id)
        assert row is not None and row.status == ExecutionStatus.FAILED and "worker lost" in (row.error or "")
        assert s.get(Execution, alive.id).status == ExecutionStatus.RUNNING  # type: ignore[union-attr]
        assert s.get(Execution, young.id).status == ExecutionStatus.RUNNING  # type: ignore[union-attr]
    assert reap_lost_runs(settings, db, redis_client, now=now) == []  # idempotent
