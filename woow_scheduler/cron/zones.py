"""Time-zone helpers: offsets and DST transitions of a ZoneInfo, in whole epoch seconds.

zoneinfo does not expose its transition table, so transitions are found by probing the
offset weekly through a year and bisecting each change to the second; results are cached
per (zone, year).  Two changes less than a week apart would be seen as one (no zone in
the tz database does that in the years this scheduler covers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from woow_scheduler.errors import InvalidCronExpression

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WEEK = 7 * 86400


class Transition(NamedTuple):
    at: int  # epoch second of the first instant with the new offset
    before: int  # offset (seconds) in force before
    after: int  # offset (seconds) in force from `at`


@lru_cache(maxsize=512)
def get_zone(name: str) -> ZoneInfo:
    """A ZoneInfo for an IANA name, or InvalidCronExpression naming the field."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidCronExpression(
            f"timezone: {name!r} is not a known IANA time zone name (e.g. 'UTC', 'Europe/Berlin')",
            field="timezone",
        ) from exc


def offset_at(zone: tzinfo, t: int) -> int:
    """UTC offset in seconds in force at epoch second t."""
    off = datetime.fromtimestamp(t, zone).utcoffset()
    return 0 if off is None else int(off.total_seconds())


@lru_cache(maxsize=4096)
def transitions_in_year(zone: tzinfo, year: int) -> tuple[Transition, ...]:
    """Offset changes whose instant falls in the given UTC year (clamped to 1..9998)."""
    if not 1 <= year <= 9998:
        return ()
    start = int((datetime(year, 1, 1, tzinfo=UTC) - EPOCH).total_seconds())
    end = int((datetime(year + 1, 1, 1, tzinfo=UTC) - EPOCH).total_seconds())
    found: list[Transition] = []
    t = start
    off = offset_at(zone, t)
    while t < end:
        nt = min(t + _WEEK, end)
        noff = offset_at(zone, nt)
        if noff != off:
            lo, hi = t, nt  # offset(lo) == off, offset(hi) != off
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(zone, mid) == off:
                    lo = mid
                else:
                    hi = mid
            found.append(Transition(hi, off, noff))
        t, off = nt, noff
    return tuple(found)


def _year_of(t: int) -> int:
    return (EPOCH + timedelta(seconds=t)).year if -62135596800 < t < 253402300799 else 9999


def is_fixed(zone: tzinfo) -> bool:
    """True when the zone has no offset changes 1970-2100 (UTC, Etc/GMT+5, Asia/Tokyo ...)."""
    return _fixed(zone)


@lru_cache(maxsize=512)
def _fixed(zone: tzinfo) -> bool:
    if zone is UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC", "GMT", "Etc/GMT"):
        return True
    return all(not transitions_in_year(zone, y) for y in range(1970, 2101))


def prev_transition(zone: tzinfo, t: int) -> Transition | None:
    """The last transition at or before t (looking back at most two years)."""
    y = _year_of(t)
    for year in (y, y - 1, y - 2):
        for tr in reversed(transitions_in_year(zone, year)):
            if tr.at <= t:
                return tr
    return None


def next_transition(zone: tzinfo, t: int, horizon: int) -> Transition | None:
    """The first transition strictly after t and at or before horizon."""
    y = _year_of(t)
    last = _year_of(horizon)
    while y <= last:
        for tr in transitions_in_year(zone, y):
            if tr.at > t:
                return tr if tr.at <= horizon else None
        y += 1
    return None
