"""Fire bookkeeping: beat's fire records (a Redis stream) drained into ``triggers`` in batches.

Beat appends one record per entry per pass to ``Keys.fired`` in the same atomic script that
advances the entry, so the hot path never waits for PostgreSQL.  :func:`drain_fired` reads the
stream in batches and updates ``previous_fire_time``, ``next_fire_time`` and ``fire_count`` with one
transaction per batch; a trigger whose schedule is exhausted becomes ``COMPLETE`` and loses its
entry.  Draining is idempotent (only fires later than the stored ``previous_fire_time`` count), so
two drainers or a crash between the commit and the ``XDEL`` never count a fire twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis
from sqlalchemy import Table, select

from ..db import Database, Trigger
from ..db.trigger_state import is_last_fire, record_fires
from ..keys import Keys
from ..settings import Settings
from .schedule import iso_utc, parse_utc

log = logging.getLogger("woow.bookkeeping")

def fired_record(
    trigger_id: str,
    fires: tuple[datetime, ...],
    next_fire: datetime | None,
    version: int,
    payload: dict[str, Any] | None = None,
) -> str:
    """One stream record: the nominal times fired in one pass, the next fire after them, and the
    workflow and user the fires were published for (``payload``: the entry's task kwargs), which
    the fire journal keeps so its sweeper can publish a lost fire again."""
    record: dict[str, Any] = {
        "t": trigger_id,
        "s": [iso_utc(f) for f in fires],
        "n": iso_utc(next_fire) if next_fire is not None else None,
        "v": version,
    }
    if payload:
        record["w"] = payload.get("workflow_id")
        record["u"] = payload.get("user_id")
    return json.dumps(record, separators=(",", ":"))


def journal_member(
    trigger_id: str, fire: datetime, workflow_id: str | None, user_id: str | None, tries: int = 0
) -> str:
    """One journaled fire: compact JSON, identical for identical fires (``ZADD NX`` keeps the first)."""
    return json.dumps(
        {"t": trigger_id, "s": iso_utc(fire), "w": workflow_id, "u": user_id, "n": tries},
        separators=(",", ":"),
        sort_keys=True,
    )


@dataclass
class DrainResult:
    records: int = 0
    fires: int = 0
    triggers: int = 0
    completed: int = 0


@dataclass
class _Agg:
    fires: list[datetime]
    last: datetime
    next_fire: datetime | None
    version: int


def drain_fired(settings: Settings, db: Database, client: redis.Redis, *, batch: int = 5000) -> DrainResult:
    """Apply every pending fire record to PostgreSQL, ``batch`` records per transaction."""
    keys = Keys(settings.key_prefix)
    result = DrainResult()
    while True:
        records = cast(list[tuple[str, dict[str, str]]], client.xrange(keys.fired, "-", "+", count=batch))
        if not records:
            return result
        aggs: dict[uuid.UUID, _Agg] = {}
        journal: dict[str, float] = {}
        for rid, fields in records:
            try:
                data = json.loads(fields["f"])
                tid = uuid.UUID(data["t"])
                fires = [parse_utc(s) for s in data["s"]]
                nxt = parse_utc(data["n"]) if data.get("n") else None
                version = int(data["v"])
            except (KeyError, ValueError, TypeError) as exc:
                log.error("bookkeeping: dropping unreadable fire record %r: %s", fields, exc)
                continue
            if not fires:
                continue
            published = int(str(rid).split("-", 1)[0]) / 1000.0  # the stream id is the XADD time in ms
            for fire in fires:
                journal[journal_member(str(tid), fire, data.get("w"), data.get("u"))] = published
            last = max(fires)
            agg = aggs.get(tid)
            if agg is None:
                aggs[tid] = _Agg(fires, last, nxt, version)
            else:
                agg.fires.extend(fires)
                if last >= agg.last:
                    agg.last, agg.next_fire, agg.version = last, nxt, version
        completed = _apply(db, aggs, result)
        with client.pipeline(transaction=True) as pipe:  # journaled exactly when the record goes
            if journal:
                pipe.zadd(keys.fire_journal, journal, nx=True)
            pipe.xdel(keys.fired, *[rid for rid, _ in records])
            pipe.execute()
        result.records += len(records)
        if completed:
            with client.pipeline(transaction=False) as pipe:
                for tid in completed:
                    pipe.zrem(keys.redbeat_schedule, keys.redbeat_entry(tid))
                    pipe.delete(keys.redbeat_entry(tid))
                pipe.execute()
        if len(records) < batch:
            return result


def _apply(db: Database, aggs: dict[uuid.UUID, _Agg], result: DrainResult) -> list[uuid.UUID]:
    if not aggs:
        return []
    t = cast(Table, Trigger.__table__)
    updates: list[dict[str, Any]] = []
    completes: list[dict[str, Any]] = []
    with db.session() as session:
        rows = session.execute(
            select(t.c.id, t.c.previous_fire_time, t.c.fire_count, t.c.version, t.c.state, t.c.updated_at)
            .where(t.c.id.in_(list(aggs)))
            .with_for_update()
        ).all()
        for row in rows:
            agg = aggs[row.id]
            prev = row.previous_fire_time
            new = {f for f in agg.fires if prev is None or f > prev}
            if not new:
                continue
            last = max(new)
            params = {
                "_id": row.id,
                "_prev": last,
                "_count": row.fire_count + len(new),
                "_next": agg.next_fire if last == agg.last else None,
                "_updated": row.updated_at,
            }
            result.fires += len(new)
            result.triggers += 1
            done = last == agg.last and is_last_fire(
                row.state, next_fire=agg.next_fire, version=row.version, fired_version=agg.version
            )
            (completes if done else updates).append(params)
        record_fires(session.connection(), updates, completes)
    result.completed += len(completes)
    return [p["_id"] for p in completes]
