"""Finishes runs whose worker died and whose fire will never come back.

A worker killed mid-run leaves a ``running`` row; normally the broker redelivers the message after
the visibility timeout and another worker takes the run over.  When that cannot happen (the
message was lost with a Redis broker, or the final write failed for good), the row would stay
``running`` forever.  The reaper marks such a row ``failed`` once its lock is gone and it is older
than the visibility timeout plus the lock TTL plus a margin: by then a redelivery would have come.
The update is conditional on the row's status and lock token, so a run that is taken over at the
same moment is never touched.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import select, update

from ..db.models import Execution, Workflow
from ..db.session import Database
from ..enums import ConcurrencyPolicy, ExecutionStatus
from ..keys import Keys, split_lock_value
from ..settings import Settings

log = logging.getLogger("woow.reaper")

MARGIN = timedelta(seconds=60)


def reap_lost_runs(
    settings: Settings, db: Database, client: redis.Redis, *, now: datetime | None = None, limit: int = 500
) -> list[uuid.UUID]:
    """Mark dead ``running`` rows ``failed``; returns their ids."""
    now = now or datetime.now(UTC)
    keys = Keys(settings.key_prefix)
    cutoff = now - timedelta(seconds=settings.visibility_timeout + settings.lock_ttl) - MARGIN
    with db.session() as s:
        rows = s.execute(
            select(Execution.id, Execution.workflow_id, Execution.lock_token, Workflow.concurrency)
            .join(Workflow, Workflow.id == Execution.workflow_id)
            .where(Execution.status == ExecutionStatus.RUNNING, Execution.updated_at < cutoff)
            .limit(limit)
        ).all()
    reaped: list[uuid.UUID] = []
    for ex_id, wf_id, token, concurrency in rows:
        key = keys.execution_lease(ex_id) if concurrency == ConcurrencyPolicy.ALLOW else keys.workflow_lock(wf_id)
        held, _ = split_lock_value(client.get(key))  # type: ignore[arg-type]
        if token is not None and held == token:
            continue  # its worker still renews the lock: a long run, not a dead one
        with db.session() as s:
            result = s.execute(
                update(Execution)
                .where(
                    Execution.id == ex_id,
                    Execution.status == ExecutionStatus.RUNNING,
                    Execution.lock_token == token if token is not None else Execution.lock_token.is_(None),
                )
                .values(
                    status=ExecutionStatus.FAILED,
                    finished_at=now,
                    error="worker lost: the run stopped renewing its lock and was not redelivered "
                    f"within {settings.visibility_timeout}s (visibility timeout)",
                )
            )
        if result.rowcount:  # type: ignore[attr-defined]
            reaped.append(ex_id)
            log.warning(
                "reaped lost run execution_id=%s workflow_id=%s",
                ex_id,
                wf_id,
                extra={"execution_id": str(ex_id), "workflow_id": str(wf_id)},
            )
    return reaped
