"""Finishes runs whose worker died and whose fire will never come back; re-sends lost retries.

A worker killed mid-run leaves a ``running`` row; normally the broker redelivers the message after
the visibility timeout and another worker takes the run over.  When that cannot happen (the
message was lost with a Redis broker, or the final write failed for good), the row would stay
``running`` forever.  The reaper marks such a row ``failed`` once its lock is gone and it is older
than the visibility timeout plus the lock TTL plus a margin: by then a redelivery would have come.
The update is conditional on the row's status and lock token, so a run that is taken over at the
same moment is never touched.  The lock it checks is the one pinned on the row at claim time.

:func:`resend_stale` publishes again the message of a ``queued`` or ``retrying`` row that outlived
its due time by ``visibility_timeout`` + ``fire_journal_grace``: its message was lost (a retry
whose publish failed is dropped by Celery, a broker lost it).  The row is touched first, with a
conditional update, so two beats never both re-send it; a duplicate message is harmless anyway.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import redis
from celery import Celery
from sqlalchemy import func, select, update

from ..db.models import Execution, Workflow
from ..db.session import Database
from ..enums import ConcurrencyPolicy, ExecutionStatus
from ..keys import Keys, split_lock_value
from ..messaging.publish import enqueue_execution
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
            select(
                Execution.id, Execution.workflow_id, Execution.lock_token, Execution.lock_key, Workflow.concurrency
            )
            .join(Workflow, Workflow.id == Execution.workflow_id)
            .where(Execution.status == ExecutionStatus.RUNNING, Execution.updated_at < cutoff)
            .limit(limit)
        ).all()
    reaped: list[uuid.UUID] = []
    for ex_id, wf_id, token, pinned, concurrency in rows:
        # the key pinned on the row at claim time; rows from before it was pinned: today's policy
        key = pinned or (
            keys.execution_lease(ex_id) if concurrency == ConcurrencyPolicy.ALLOW else keys.workflow_lock(wf_id)
        )
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


def resend_stale(
    settings: Settings, db: Database, app: Celery, *, now: datetime | None = None, limit: int = 500
) -> list[uuid.UUID]:
    """Publish again ``queued``/``retrying`` rows whose message never came; returns their ids."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=settings.visibility_timeout + settings.fire_journal_grace)
    waiting = (ExecutionStatus.QUEUED, ExecutionStatus.RETRYING)
    with db.session() as s:
        rows = s.execute(
            select(Execution, Workflow.name, Workflow.timeout)
            .join(Workflow, Workflow.id == Execution.workflow_id)
            .where(Execution.status.in_(waiting), func.coalesce(Execution.due_at, Execution.updated_at) < cutoff)
            .limit(limit)
        ).all()
        found = [(ex.id, ex.status, ex.updated_at, ex, name, timeout) for ex, name, timeout in rows]
        s.expunge_all()
    sent: list[uuid.UUID] = []
    for ex_id, status, seen, ex, name, timeout in found:
        with db.session() as s:
            claimed = s.execute(
                update(Execution)
                .where(Execution.id == ex_id, Execution.status == status, Execution.updated_at == seen)
                .values(updated_at=now, due_at=now)
            )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue  # it moved on meanwhile (claimed, or another beat re-sent it)
        try:
            enqueue_execution(
                app,
                settings,
                execution_id=ex_id,
                workflow_id=ex.workflow_id,
                workflow_name=name,
                trigger_id=ex.trigger_id,
                user_id=ex.user_id,
                scheduled_for=ex.scheduled_for,
                enqueued_at=ex.enqueued_at,
                timeout=timeout,
            )
        except Exception as exc:  # the broker is down: the row is due again after the next window
            log.warning("reaper: re-sending execution %s failed: %s", ex_id, exc)
            continue
        sent.append(ex_id)
        log.warning(
            "re-sent a %s execution whose message never came execution_id=%s workflow_id=%s",
            status,
            ex_id,
            ex.workflow_id,
            extra={"execution_id": str(ex_id), "workflow_id": str(ex.workflow_id)},
        )
    return sent
