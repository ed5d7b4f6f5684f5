"""The one writer of a trigger's schedule state: ``triggers.state``, ``next_fire_time``,
``previous_fire_time`` and ``fire_count``.

Every transition of these four columns is a function here; the service (add, change, pause,
resume, ``apply``), the reconciler (a schedule with no fire left) and the fire bookkeeping (fires
recorded by beat) call them and never write the columns themselves.  ``tests/unit/test_layout.py``
greps the package for writes of ``triggers.state`` and finds only this module.

The transitions::

    new          -> NORMAL (a fire ahead) | COMPLETE (none)                        place_new
    NORMAL/ERROR -> PAUSED                                                         set_state
    PAUSED/ERROR -> NORMAL (re-anchored at now; fires missed meanwhile are not caught up)
                    | COMPLETE (no fire left)                                      set_state
    any          -> same state with a new spec; COMPLETE -> NORMAL when the new spec
                    has a fire ahead; NORMAL -> COMPLETE when it has none          respecify
    any          -> the same with its calendar edited                              replan
    NORMAL       -> COMPLETE when the schedule is exhausted (reconciler)           complete_exhausted
    fires        -> previous_fire_time, fire_count, next_fire_time;
                    COMPLETE after the last fire (bookkeeping)                     record_fires

Functions on ORM objects run inside the caller's session (one transaction with the rest of the
change); the SQL ones take the caller's connection.  No I/O of their own, no Celery.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, update

from ..calendars import Calendar
from ..enums import ACTIVE_TRIGGER_STATES, TriggerState
from ..errors import InvalidInput
from ..triggers import TriggerSpec
from .models import Trigger

__all__ = [
    "ACTIVE_TRIGGER_STATES",
    "complete_exhausted",
    "is_last_fire",
    "place_new",
    "record_fires",
    "replan",
    "respecify",
    "set_state",
]


def _next_fire(tr: Trigger, spec: TriggerSpec, now: datetime, calendar: Calendar | None) -> datetime | None:
    """The next fire after the later of ``now`` and the last fire (a change never re-fires a time
    that already fired), skipping times ``calendar`` excludes."""
    return spec.next_fire_time(max(now, tr.previous_fire_time or now), calendar)


def _write_spec(tr: Trigger, spec: TriggerSpec, now: datetime, calendar: Calendar | None) -> None:
    """Copy ``spec`` into the row's columns and compute its next fire (:func:`_next_fire`)."""
    tr.type = spec.type
    tr.spec = spec.model_dump(mode="json")
    tr.timezone = spec.timezone
    tr.dst_policy = str(getattr(spec, "dst_policy", "wall_clock"))
    tr.misfire_policy = str(spec.misfire_policy)
    tr.start_at = spec.start_at
    tr.end_at = spec.end_at
    tr.repeat_count = getattr(spec, "repeat_count", None)
    tr.next_fire_time = _next_fire(tr, spec, now, calendar)


def _revive_or_complete(tr: Trigger) -> None:
    """COMPLETE with a fire ahead -> NORMAL; active with no fire left -> COMPLETE."""
    if tr.state == TriggerState.COMPLETE and tr.next_fire_time is not None:
        tr.state = TriggerState.NORMAL
    elif tr.state in ACTIVE_TRIGGER_STATES and tr.next_fire_time is None:
        tr.state = TriggerState.COMPLETE


def place_new(tr: Trigger, spec: TriggerSpec, now: datetime, calendar: Calendar | None = None) -> None:
    """A new trigger, anchored at ``now`` (it never fires for earlier times)."""
    tr.fire_count = 0
    tr.previous_fire_time = None
    _write_spec(tr, spec, now, calendar)
    tr.anchor_at = now
    tr.state = TriggerState.NORMAL if tr.next_fire_time else TriggerState.COMPLETE


def respecify(tr: Trigger, spec: TriggerSpec, now: datetime, calendar: Calendar | None = None) -> None:
    """Replace a trigger's spec (CLI/API change, ``woow workflow apply``); its fire count and last
    fire time are kept.  A COMPLETE trigger whose new spec has a fire ahead is NORMAL again (a
    one-time trigger re-applied with a future ``at`` fires); an active one with no fire left is
    COMPLETE.  PAUSED and ERROR stay as they are."""
    _write_spec(tr, spec, now, calendar)
    tr.anchor_at = max(now, tr.anchor_at) if tr.anchor_at is not None else now
    _revive_or_complete(tr)
    tr.version += 1


def replan(tr: Trigger, spec: TriggerSpec, now: datetime, calendar: Calendar | None) -> None:
    """The trigger's calendar changed: its next fire again, reviving or completing it as
    :func:`respecify` does; ``updated_at`` moves so incremental reconciles see it."""
    tr.next_fire_time = _next_fire(tr, spec, now, calendar)
    _revive_or_complete(tr)
    tr.version += 1
    tr.updated_at = now


#: the states a trigger may be paused (PAUSED) or resumed (NORMAL) from
_SET_BY_HAND: dict[TriggerState, frozenset[TriggerState]] = {
    TriggerState.PAUSED: frozenset({TriggerState.NORMAL, TriggerState.ERROR}),
    TriggerState.NORMAL: frozenset({TriggerState.PAUSED, TriggerState.ERROR}),
}


def can_set_state(tr: Trigger, target: TriggerState) -> bool:
    """Whether :func:`set_state` would change ``tr`` (not already there, and allowed from its state)."""
    return tr.state in _SET_BY_HAND.get(target, frozenset())


def set_state(
    tr: Trigger, target: TriggerState, spec: TriggerSpec, now: datetime, calendar: Calendar | None = None
) -> bool:
    """Pause (``target`` PAUSED) or resume (NORMAL); returns whether the row changed.

    Raises :class:`InvalidInput` naming the state for a transition that is not allowed (pausing a
    COMPLETE trigger, resuming a NORMAL one is a no-op, not an error).
    """
    allowed_from = _SET_BY_HAND.get(target)
    if allowed_from is None:
        raise InvalidInput(f"state: a trigger cannot be set to {target.value} by hand", field="state")
    if tr.state == target:
        return False
    if tr.state not in allowed_from:
        raise InvalidInput(
            f"state: trigger '{tr.name}' is {tr.state.value}; it cannot become {target.value}", field="state"
        )
    tr.state = target
    if target == TriggerState.NORMAL:
        # fires missed while paused are not caught up (Quartz would misfire them)
        tr.anchor_at = now
        tr.next_fire_time = _next_fire(tr, spec, now, calendar)
        if tr.next_fire_time is None:
            tr.state = TriggerState.COMPLETE
    tr.version += 1
    return True


def _table() -> Table:
    return cast(Table, Trigger.__table__)


def complete_exhausted(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Triggers whose schedule has no fire left become COMPLETE, unless changed meanwhile.

    ``rows``: ``{"_id": trigger id, "_version": the version the decision was made on}``.  Returns
    how many rows changed.
    """
    if not rows:
        return 0
    t = _table()
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"))
        .where(t.c.version == bindparam("_version"))
        .where(t.c.state.in_([s.value for s in ACTIVE_TRIGGER_STATES]))
        .values(state=TriggerState.COMPLETE.value, next_fire_time=None, version=t.c.version + 1)
    )
    result = conn.execute(stmt, list(rows))
    return int(result.rowcount or 0)


def is_last_fire(state: TriggerState | str, *, next_fire: datetime | None, version: int, fired_version: int) -> bool:
    """Bookkeeping's rule: the recorded fire was the schedule's last (no next fire), recorded on the
    version beat fired, of a trigger still active (a change or a pause since then wins)."""
    return next_fire is None and version == fired_version and state in ACTIVE_TRIGGER_STATES


def record_fires(
    conn: Connection, updates: Collection[dict[str, Any]], completes: Collection[dict[str, Any]]
) -> None:
    """Write fires beat recorded: ``previous_fire_time`` (``_prev``), ``fire_count`` (``_count``)
    and ``next_fire_time`` (``_next``) per trigger ``_id``.

    ``updates`` keep the row's ``updated_at`` (``_updated``: bookkeeping is not a change of the
    trigger, so incremental reconciles do not pick it up); ``completes`` were the last fire
    (:func:`is_last_fire`): the trigger becomes COMPLETE with a new version.
    """
    t = _table()
    stmt = update(t).where(t.c.id == bindparam("_id"))
    fired: dict[str, Any] = {"previous_fire_time": bindparam("_prev"), "fire_count": bindparam("_count")}
    if updates:
        values = {**fired, "next_fire_time": bindparam("_next"), "updated_at": bindparam("_updated")}
        conn.execute(stmt.values(values), list(updates))
    if completes:
        done = {**fired, "next_fire_time": None, "state": TriggerState.COMPLETE.value, "version": t.c.version + 1}
        rows = [{k: v for k, v in p.items() if k not in ("_next", "_updated")} for p in completes]
        conn.execute(stmt.values(done), rows)
