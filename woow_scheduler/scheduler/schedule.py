"""Our Celery ``schedule`` type: a trigger spec evaluated by our engine, with nominal fire times.

A RedBeat entry of a trigger keeps one *position* in its ``meta.last_run_at``: the nominal time of
the last fire that was dispatched (never the moment beat woke up).  Fires strictly after the
position are pending.  The schedule also carries an *anchor*: the instant (floored to the second)
at which the trigger was created, resumed or its spec changed (``triggers.anchor_at``).  Fires at
or before the anchor never count, so a new, updated or resumed trigger never fires for times
before that change, whatever the entry's position says.  The effective position is ``max(last_run_at, anchor)``.

Everything here is pure: ``now`` is passed in (``is_due``/``remaining_estimate`` read the clock
only because Celery's API asks them to).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import BaseSchedule, schedstate

from ..calendars import Calendar, calendar_json, parse_calendar
from ..triggers import SPEC_ADAPTER, MisfirePolicy, TriggerSpec

#: parsed specs by their JSON form's repr: triggers often share a spec (every one of a burst, the
#: common crons), and a spec is immutable (a frozen model), so one parse serves them all
_SPECS: dict[str, TriggerSpec] = {}
_SPECS_MAX = 50_000

SCHEDULE_TYPE = "woow_trigger"

#: More fires than this for one entry in one pass are never dispatched at once (the rest wait for
#: the next pass); only reachable with a very late beat and a threshold larger than the lateness.
MAX_FIRES_PER_PASS = 1000

def floor_second(when: datetime) -> datetime:
    """``when`` in UTC, without its fraction of a second."""
    if when.microsecond == 0 and when.tzinfo is UTC:
        return when  # (already so: the usual case, a stored time parsed back)
    return when.astimezone(UTC).replace(microsecond=0)


def parse_utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no UTC offset")
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=4096)  # a burst formats the same few fire times a few times per fire
def iso_utc(when: datetime) -> str:
    """The wire form of a fire time: ISO 8601, UTC, whole seconds (``2026-01-01T09:00:00+00:00``)."""
    return floor_second(when).isoformat()


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What one pass of beat does with one entry at ``now``."""

    fires: tuple[datetime, ...]
    """Nominal fire times to dispatch now, oldest first (the ``scheduled_for`` of each task)."""
    position: datetime | None
    """The entry's new ``last_run_at``; ``None`` when nothing changes."""
    next_fire: datetime | None
    """First pending fire after the new position; ``None`` when the schedule is exhausted."""
    misfired: bool = False
    """The pending fire was older than the misfire threshold: the misfire policy decided ``fires``."""


class WoowTriggerSchedule(BaseSchedule):  # type: ignore[misc]
    """A :data:`TriggerSpec` as a Celery schedule (seconds resolution, nominal fire times)."""

    def __init__(self, spec: TriggerSpec, anchor: datetime, version: int = 1, calendar: Calendar | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.anchor = floor_second(anchor)
        self.version = version
        self.calendar = calendar  # fires it excludes are skipped (Quartz's calendar on a trigger)

    # -- pure fire-time logic ---------------------------------------------------------------
    def position(self, last_run_at: datetime | None) -> datetime:
        """The effective position: fires strictly after it are pending."""
        if last_run_at is None:
            return self.anchor
        last = floor_second(last_run_at)
        return last if last > self.anchor else self.anchor

    def next_fire_time(self, last_run_at: datetime | None) -> datetime | None:
        """The first pending nominal fire (may lie in the past when beat is late)."""
        return self.spec.next_fire_time(self.position(last_run_at), self.calendar)

    def plan(self, last_run_at: datetime | None, now: datetime) -> FirePlan:
        """Decide the fires due at ``now``.

        On time (the oldest pending fire is at most ``misfire_threshold`` seconds late): every
        pending fire up to ``now``, each with its own nominal time.  Late by more: the trigger's
        misfire policy chooses (``spec.missed_fires``) and the position moves to ``now``, so the
        next fire is the next regular one.  Deterministic for a given position and ``now``.
        """
        pos = self.position(last_run_at)
        now_s = floor_second(now)
        cal = self.calendar
        first = self.spec.next_fire_time(pos, cal)
        if first is None or first > now_s:
            return FirePlan((), None, first)
        if (now_s - first).total_seconds() > float(self.spec.misfire_threshold):
            chosen = tuple(t for t in self.spec.missed_fires(pos, now_s, calendar=cal) if pos < t <= now_s)
            new_pos = max((now_s, *chosen))
            return FirePlan(chosen, new_pos, self.spec.next_fire_time(new_pos, cal), misfired=True)
        fires = [first]
        nxt = self.spec.next_fire_time(first, cal)
        while nxt is not None and nxt <= now_s and len(fires) < MAX_FIRES_PER_PASS:
            fires.append(nxt)
            nxt = self.spec.next_fire_time(nxt, cal)
        return FirePlan(tuple(fires), fires[-1], nxt)

    @property
    def misfire_policy(self) -> MisfirePolicy:
        return self.spec.misfire_policy

    # -- Celery's schedule API ----------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(UTC)

    def remaining_estimate(self, last_run_at: datetime | None) -> timedelta | None:
        nxt = self.next_fire_time(last_run_at)
        if nxt is None:
            return None
        return nxt - self.now()

    def is_due(self, last_run_at: datetime | None) -> schedstate:
        now = self.now()
        nxt = self.next_fire_time(last_run_at)
        if nxt is None:
            return schedstate(is_due=False, next=None)
        if nxt <= now:
            following = self.spec.next_fire_time(floor_second(now), self.calendar)
            wait = (following - now).total_seconds() if following is not None else None
            return schedstate(is_due=True, next=wait)
        return schedstate(is_due=False, next=(nxt - now).total_seconds())

    # -- JSON form (inside RedBeat's ``definition``) --------------------------------------------
    def to_json(self) -> dict[str, Any]:
        cal = calendar_json(self.calendar) if self.calendar is not None else None
        return schedule_json(self.spec.model_dump(mode="json"), self.anchor, self.version, cal)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WoowTriggerSchedule:
        raw = data["spec"]
        key = repr(raw)  # (stored definitions are canonical JSON: the same spec, the same repr)
        spec = _SPECS.get(key)
        if spec is None:
            spec = SPEC_ADAPTER.validate_python(raw)
            if len(_SPECS) >= _SPECS_MAX:
                _SPECS.clear()
            _SPECS[key] = spec
        cal = data.get("calendar")
        calendar = parse_calendar(cal) if cal is not None else None
        return cls(spec, parse_utc(str(data["anchor"])), int(data.get("version", 1)), calendar)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WoowTriggerSchedule):
            return NotImplemented
        mine = (self.spec, self.anchor, self.version, self.calendar)
        return mine == (other.spec, other.anchor, other.version, other.calendar)

    def __hash__(self) -> int:
        return hash((self.anchor, self.version))

    def __repr__(self) -> str:
        return f"<WoowTriggerSchedule {self.spec.type} anchor={iso_utc(self.anchor)} v{self.version}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.spec, self.anchor, self.version, self.calendar))


def schedule_json(
    spec: Mapping[str, Any], anchor: datetime, version: int, calendar: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON form of a schedule from a stored spec, without parsing it (the reconciler's fast path).

    ``calendar`` (a calendar's stored definition) is present only for a trigger that has one.
    """
    out = {"__type__": SCHEDULE_TYPE, "spec": dict(spec), "anchor": iso_utc(anchor), "version": version}
    if calendar is not None:
        out["calendar"] = dict(calendar)
    return out
