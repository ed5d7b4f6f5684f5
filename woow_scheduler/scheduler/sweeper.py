"""At least once from beat to a final row: the fire journal and its sweeper.

Beat records every fire it published in its fire stream (``Keys.fired``, with the payload's
workflow and user); the bookkeeping drain moves each fire into the journal, a sorted set
(``Keys.fire_journal``) scored by the time beat published it, in the same transaction that deletes
the stream record.  :func:`sweep_fires`, run by the active beat:

- forgets every journaled fire that has an ``executions`` row (normally seconds after publishing);
- publishes again every fire with no row once ``visibility_timeout`` + ``fire_journal_grace`` has
  passed since it was published: its message was lost (popped by a worker killed before kombu
  recorded it unacked, a broker that lost its data, a retry budget exhausted by a long PostgreSQL
  outage).  The idempotency key ``(trigger_id, scheduled_for)`` makes a re-publish of a fire that
  did arrive harmless.  Each re-publish restarts the wait; after :data:`MAX_REPUBLISH` the fire is
  given up with one ERROR line;
- drops, with one line, fires whose trigger or workflow was deleted meanwhile.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery
from sqlalchemy import select, tuple_

from ..db import Database
from ..db.models import Execution, Trigger, Workflow
from ..keys import Keys
from ..messaging.publish import enqueue_fire
from ..settings import Settings
from .bookkeeping import journal_member
from .schedule import iso_utc, parse_utc

log = logging.getLogger("woow.sweeper")

SETTLE = 2.0  # seconds a fire gets to reach a worker before the sweeper looks for its row
MAX_REPUBLISH = 5


@dataclass(frozen=True)
class _Fire:
    member: str
    published: float
    trigger_id: uuid.UUID
    scheduled_for: datetime
    workflow_id: uuid.UUID | None
    user_id: str | None
    tries: int


@dataclass
class SweepResult:
    arrived: int = 0
    republished: int = 0
    dropped: int = 0
    waiting: int = 0


def _parse(member: str, score: float) -> _Fire | None:
    try:
        data = json.loads(member)
        return _Fire(
            member=member,
            published=score,
            trigger_id=uuid.UUID(data["t"]),
            scheduled_for=parse_utc(data["s"]),
            workflow_id=uuid.UUID(data["w"]) if data.get("w") else None,
            user_id=data.get("u"),
            tries=int(data.get("n") or 0),
        )
    except (KeyError, ValueError, TypeError):
        return None


def sweep_fires(
    settings: Settings,
    db: Database,
    client: redis.Redis,
    app: Celery,
    *,
    now: datetime | None = None,
    batch: int = 1000,
) -> SweepResult:
    """One pass over the oldest ``batch`` journaled fires (see the module doc)."""
    keys = Keys(settings.key_prefix)
    at = (now or datetime.now(UTC)).timestamp()
    overdue = at - settings.visibility_timeout - settings.fire_journal_grace
    raw: list[tuple[str, float]] = client.zrangebyscore(  # type: ignore[assignment]
        keys.fire_journal, "-inf", at - SETTLE, start=0, num=batch, withscores=True
    )
    result = SweepResult()
    if not raw:
        return result
    fires: list[_Fire] = []
    bad: list[str] = []
    for member, score in raw:
        parsed = _parse(member, score)
        if parsed is None:
            bad.append(member)
        else:
            fires.append(parsed)
    if bad:
        log.error("sweeper: dropping %d unreadable journal entries, e.g. %r", len(bad), bad[0])
        client.zrem(keys.fire_journal, *bad)
    pairs = [(f.trigger_id, f.scheduled_for) for f in fires]
    with db.session() as s:
        have = {
            (r.trigger_id, r.scheduled_for)
            for r in s.execute(
                select(Execution.trigger_id, Execution.scheduled_for).where(
                    tuple_(Execution.trigger_id, Execution.scheduled_for).in_(pairs)
                )
            )
        }
        lost = [f for f in fires if (f.trigger_id, f.scheduled_for) not in have and f.published <= overdue]
        targets: dict[uuid.UUID, Any] = {}
        if lost:
            rows = s.execute(
                select(Trigger.id, Trigger.workflow_id, Workflow.name, Workflow.timeout)
                .join(Workflow, Workflow.id == Trigger.workflow_id)
                .where(Trigger.id.in_({f.trigger_id for f in lost}))
            ).all()
            targets = {r.id: r for r in rows}
    done = [f.member for f in fires if (f.trigger_id, f.scheduled_for) in have]
    result.arrived = len(done)
    result.waiting = len(fires) - len(done) - len(lost)
    updates: dict[str, float] = {}
    for f in lost:
        target = targets.get(f.trigger_id)
        if target is None:
            log.warning(
                "sweeper: fire of trigger %s at %s dropped: its trigger or workflow was deleted",
                f.trigger_id,
                iso_utc(f.scheduled_for),
            )
            done.append(f.member)
            result.dropped += 1
            continue
        if f.tries >= MAX_REPUBLISH:
            log.error(
                "sweeper: fire of trigger %s at %s has no execution after %d re-publishes; given up",
                f.trigger_id,
                iso_utc(f.scheduled_for),
                f.tries,
            )
            done.append(f.member)
            result.dropped += 1
            continue
        try:
            enqueue_fire(
                app,
                settings,
                workflow_id=target.workflow_id,
                workflow_name=target.name,
                trigger_id=f.trigger_id,
                user_id=f.user_id,
                scheduled_for=f.scheduled_for,
                timeout=target.timeout,
            )
        except Exception as exc:  # the broker is down: the fire stays journaled for the next pass
            log.warning("sweeper: re-publishing trigger %s at %s failed: %s", f.trigger_id, f.scheduled_for, exc)
            continue
        log.warning(
            "sweeper: fire of trigger %s at %s has no execution %.0f s after it was published; published again",
            f.trigger_id,
            iso_utc(f.scheduled_for),
            at - f.published,
        )
        result.republished += 1
        done.append(f.member)
        workflow_id = str(f.workflow_id) if f.workflow_id else str(target.workflow_id)
        updates[journal_member(str(f.trigger_id), f.scheduled_for, workflow_id, f.user_id, f.tries + 1)] = at
    with client.pipeline(transaction=True) as pipe:
        if done:
            pipe.zrem(keys.fire_journal, *done)
        if updates:
            pipe.zadd(keys.fire_journal, updates)
        pipe.execute()
    return result
