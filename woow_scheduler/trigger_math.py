"""Fire-time math of the two Quartz wall-clock triggers (pure; no clock reads).

* :func:`daily_next` - ``DailyTimeIntervalTrigger``: every N seconds/minutes/hours from a start
  time of day up to and including an end time of day, on some days of the week.
* :func:`calendar_next` - ``CalendarIntervalTrigger``: every N seconds ... years counted on the
  wall clock of a time zone from an anchor.

Both follow Quartz 2.3.2's ``getFireTimeAfter`` step by step (they are checked against vectors
from real Quartz in tests/oracle), with one deliberate difference, the ``wall_clock`` DST
policy of the cron engine: a wall-clock time that occurs twice (fall back) is its *first*
occurrence, where ``java.util.Calendar`` takes the second.  A wall-clock time inside a
spring-forward gap is moved forward by the gap, as in Quartz.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from woow_scheduler.calendars import local_instant

_SECOND = timedelta(seconds=1)
GIVE_UP_YEARS = 100  # Quartz's YEAR_TO_GIVEUP_SCHEDULING_AT is the current year + 100


def ceil_second(dt: datetime) -> datetime:
    floor = dt.replace(microsecond=0)
    return floor if floor == dt else floor + _SECOND


# -- DailyTimeIntervalTrigger --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DailyRule:
    zone: tzinfo
    start_at: datetime  # aware UTC, whole seconds
    start_time: time
    end_time: time
    step: int  # seconds
    weekdays: frozenset[int]  # date.weekday(): 0=MON .. 6=SUN

    def day_window(self, day: date) -> tuple[datetime, datetime] | None:
        """First fire and end of the window on a local day, or None when it does not fire."""
        if day.weekday() not in self.weekdays:
            return None
        first = local_instant(day, self.start_time, self.zone)
        end = local_instant(day, self.end_time, self.zone)
        return None if end < first else (first, end)


def daily_next(rule: DailyRule, after: datetime) -> datetime | None:
    """The first fire strictly after `after` (read to the whole second), ignoring end_at."""
    t = after.replace(microsecond=0) + _SECOND
    t = max(t, rule.start_at)
    day = t.astimezone(rule.zone).date()
    for _ in range(9):
        window = rule.day_window(day)
        if window is not None:
            first, end = window
            if t <= first:
                return first
            k = -((first - t) // timedelta(seconds=rule.step))  # ceil((t - first) / step)
            fire = first + k * timedelta(seconds=rule.step)
            if fire <= end:
                return fire
        day += timedelta(days=1)
        t = local_instant(day, time(0), rule.zone)
        if day.year > 9997:
            return None
    return None


def daily_nth(rule: DailyRule, n: int) -> datetime | None:
    """The n-th fire (0 = the first at or after start_at), or None past the give-up horizon."""
    first = daily_next(rule, rule.start_at - _SECOND)
    if first is None:
        return None
    step = timedelta(seconds=rule.step)
    day = first.astimezone(rule.zone).date()
    window = rule.day_window(day)
    assert window is not None
    more = (window[1] - first) // step  # fires after the first on its day
    if n <= more:
        return first + n * step
    n -= more + 1
    last_day = day.replace(year=min(day.year + GIVE_UP_YEARS, 9997))
    while day < last_day:
        day += timedelta(days=1)
        window = rule.day_window(day)
        if window is None:
            continue
        count = (window[1] - window[0]) // step + 1
        if n < count:
            return window[0] + n * step
        n -= count
    return None


# -- CalendarIntervalTrigger ---------------------------------------------------------------
class CalendarUnit(StrEnum):
    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


UNIT_SECONDS = {CalendarUnit.SECOND: 1, CalendarUnit.MINUTE: 60, CalendarUnit.HOUR: 3600}


class _Wall:
    """Just enough of a lenient ``java.util.Calendar`` reading: a local day and time of day that
    are re-read from the instant after every change, so a shifted hour stays shifted."""

    __slots__ = ("day", "t", "tod", "zone")

    def __init__(self, zone: tzinfo, instant: datetime) -> None:
        self.zone = zone
        self._read(instant.astimezone(UTC))

    def _read(self, instant: datetime) -> None:
        self.t = instant
        local = instant.astimezone(self.zone)
        self.day, self.tod = local.date(), local.time()

    def _offset(self, instant: datetime) -> timedelta:
        off = instant.astimezone(self.zone).utcoffset()
        assert off is not None
        return off

    def add(self, unit: CalendarUnit, n: int) -> None:
        if unit in (CalendarUnit.DAY, CalendarUnit.WEEK):
            # GregorianCalendar.add(DAY_OF_YEAR): the target wall time read with the offset in
            # force before the move, then corrected by the offset change unless that changes
            # the date (so a time in a spring-forward gap lands one gap *earlier*)
            day = self.day + timedelta(days=n * (7 if unit is CalendarUnit.WEEK else 1))
            if not 1 <= day.year <= 9997:
                raise OverflowError(day.year)
            old = self._offset(self.t)
            t1 = datetime.combine(day, self.tod, tzinfo=UTC) - old
            shift = old - self._offset(t1)
            if shift and (t1 + shift).astimezone(self.zone).date() == day:
                t1 += shift
            self._read(t1)
            return
        months = n * (12 if unit is CalendarUnit.YEAR else 1)
        y, m = divmod(self.day.year * 12 + self.day.month - 1 + months, 12)
        if not 1 <= y <= 9997:
            raise OverflowError(y)
        day = date(y, m + 1, min(self.day.day, _cal.monthrange(y, m + 1)[1]))  # pinned, as Java
        self._read(local_instant(day, self.tod, self.zone))

    def set_hour(self, hour: int) -> None:
        self._read(local_instant(self.day, self.tod.replace(hour=hour), self.zone))

    def instant(self) -> datetime:
        return self.t


def calendar_next(
    start_at: datetime,
    zone: tzinfo,
    unit: CalendarUnit,
    every: int,
    after: datetime,
    *,
    preserve_hour: bool = False,
    skip_day_if_hour_missing: bool = False,
) -> datetime | None:
    """Quartz ``CalendarIntervalTriggerImpl.getFireTimeAfter``, ignoring end_at."""
    if after < start_at:
        return start_at
    seconds_after_start = 1 + (after - start_at) // _SECOND
    if unit in UNIT_SECONDS:
        size = every * UNIT_SECONDS[unit]
        jumps = -(-seconds_after_start // size)
        return start_at + timedelta(seconds=jumps * size)
    give_up = after.astimezone(zone).year + GIVE_UP_YEARS
    wall = _Wall(zone, start_at)
    initial_hour = wall.tod.hour
    try:
        if unit in (CalendarUnit.DAY, CalendarUnit.WEEK):
            days = every * (7 if unit is CalendarUnit.WEEK else 1)
            jumps = seconds_after_start // (days * 86400)
            if jumps > 20:  # Quartz leaps most of the way, then steps (the path matters near DST)
                jumps = int(jumps * (0.80 if jumps < 50 else 0.90 if jumps < 500 else 0.95))
                wall.add(unit, every * jumps)
        while wall.instant() <= after and wall.day.year < give_up:
            wall.add(unit, every)
        while preserve_hour and wall.tod.hour != initial_hour and wall.day.year < give_up:
            wall.set_hour(initial_hour)
            if wall.tod.hour != initial_hour:  # the hour does not exist on that day
                if not skip_day_if_hour_missing:
                    break
            elif wall.instant() > after:
                break
            wall.add(unit, every)
    except OverflowError:
        return None
    if wall.day.year >= give_up:
        return None
    return wall.instant().astimezone(UTC)
