"""Trigger fire times as the live schedule sees them, not as PostgreSQL last heard of them.

Beat records its fires in the RedBeat entry's ``meta`` at once and in PostgreSQL in batches, so a
trigger row can lag by a few seconds.  For active triggers the API reads the entry (one pipelined
round trip for a whole list) and takes the later of both previous fire times, and the next fire the
entry's own schedule will fire (``WoowTriggerSchedule.next_fire_time``, exactly what beat evaluates).
Without an entry, or without Redis, the stored values are returned unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import redis

from ..enums import ACTIVE_TRIGGER_STATES
from ..keys import Keys
from ..scheduler.codec import decode_meta
from ..scheduler.schedule import WoowTriggerSchedule
from ..views import TriggerView

log = logging.getLogger("woow.api")

def live_triggers(client: redis.Redis, keys: Keys, views: Sequence[TriggerView]) -> list[TriggerView]:
    active = [v for v in views if v.state in ACTIVE_TRIGGER_STATES]
    if not active:
        return list(views)
    try:
        with client.pipeline(transaction=False) as pipe:
            for v in active:
                pipe.hmget(keys.redbeat_entry(v.id), "definition", "meta")
            entries: list[Any] = pipe.execute()
    except redis.RedisError as exc:
        log.warning("api: cannot read the live schedule (%s); showing stored fire times", exc)
        return list(views)
    by_id = {v.id: _overlay(v, raw_def, raw_meta) for v, (raw_def, raw_meta) in zip(active, entries, strict=True)}
    return [by_id.get(v.id, v) for v in views]


def _overlay(view: TriggerView, raw_def: Any, raw_meta: Any) -> TriggerView:
    if not raw_def:
        return view
    try:
        definition = json.loads(raw_def)
        schedule = WoowTriggerSchedule.from_json(definition["schedule"])
        last, total = decode_meta(raw_meta)
    except Exception as exc:  # an entry this version cannot read: the stored values stand
        log.warning("api: unreadable schedule entry of trigger %s: %s", view.id, exc)
        return view
    previous = max((t for t in (view.previous_fire_time, last) if t is not None), default=None)
    return view.model_copy(
        update={
            "previous_fire_time": previous,
            "next_fire_time": schedule.next_fire_time(previous),
            "fire_count": max(view.fire_count, total),
        }
    )
