"""A faithful port of Quartz 2.3.2 ``CronExpression.getTimeAfter`` for ``dst_policy="quartz"``.

Quartz searches with a lenient ``java.util.GregorianCalendar``: fields are set one by one and
only normalised when read, and a wall-clock reading is turned into an instant with the
standard-time rule of ``ZoneInfo.getOffsetsByWall`` (a time in a spring-forward gap uses the
offset before the change, an ambiguous time the offset after it; both give the later
instant).  Its quirks near DST changes (skipped hours, a jump to the second pass of a repeated
hour) depend on the exact order of those steps, so this module reproduces the algorithm
step by step instead of approximating it.  It is verified against vectors from real Quartz
(tests/oracle).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, tzinfo

from woow_scheduler.cron.engine import Matcher, quartz_weekday
from woow_scheduler.cron.fields import DomKind, DowKind
from woow_scheduler.cron.zones import EPOCH

_SEC, _MIN, _HOUR, _DAY, _MONTH, _YEAR = range(6)


def _last_day(month: int, year: int) -> int:
    return calendar.monthrange(year, month)[1]


class _LenientCalendar:
    """Just enough of java.util.GregorianCalendar: six fields, lenient, lazily normalised."""

    __slots__ = ("_dirty", "_f", "_t", "_zone")

    def __init__(self, zone: tzinfo, t: int) -> None:
        self._zone = zone
        self._t = t
        self._f = [0] * 6
        self._dirty = False
        self._compute_fields()

    @classmethod
    def from_fields(cls, zone: tzinfo, fields: list[int]) -> _LenientCalendar:
        cal = cls(zone, 0)
        cal._f[:] = fields
        cal._dirty = True
        return cal

    def _compute_fields(self) -> None:
        local = datetime.fromtimestamp(self._t, self._zone)
        self._f[:] = [local.second, local.minute, local.hour, local.day, local.month, local.year]

    def _compute_time(self) -> None:
        s, mi, h, d, mo, y = self._f
        y += (mo - 1) // 12
        mo = (mo - 1) % 12 + 1
        if not 1 <= y <= 9998:
            raise OverflowError(y)
        naive = datetime(y, mo, 1) + timedelta(days=d - 1, seconds=h * 3600 + mi * 60 + s)
        # getOffsetsByWall: of the two readings, the later instant (standard-time rule)
        t0 = int((naive.replace(tzinfo=self._zone, fold=0) - EPOCH).total_seconds())
        t1 = int((naive.replace(tzinfo=self._zone, fold=1) - EPOCH).total_seconds())
        self._t = max(t0, t1)
        self._compute_fields()
        self._dirty = False

    def get(self, field: int) -> int:
        if self._dirty:
            self._compute_time()
        return self._f[field]

    def set(self, field: int, value: int) -> None:
        self._f[field] = value
        self._dirty = True

    def time(self) -> int:
        if self._dirty:
            self._compute_time()
        return self._t

    def day_of_week(self) -> int:
        if self._dirty:
            self._compute_time()
        return quartz_weekday(self._f[_YEAR], self._f[_MONTH], self._f[_DAY])

    def set_hour(self, hour: int) -> None:
        """Quartz's setCalendarHour: an hour skipped by DST becomes the next one."""
        self.set(_HOUR, hour)
        if self.get(_HOUR) != hour and hour != 24:
            self.set(_HOUR, hour + 1)

    def reset_time(self) -> None:
        self.set(_SEC, 0)
        self.set(_MIN, 0)
        self.set(_HOUR, 0)


def _first_ge(values: tuple[int, ...], v: int) -> int | None:
    for x in values:
        if x >= v:
            return x
    return None


def get_time_after(m: Matcher, zone: tzinfo, after: int, limit_year: int) -> int | None:
    """Quartz's getTimeAfter(after) in whole epoch seconds, or None."""
    f = m.fields
    seconds, minutes, hours, months = f.seconds, f.minutes, f.hours, f.months
    years = f.years
    dom_values = f.dom_values if f.dom_kind is not DomKind.ANY else tuple(range(1, 32))
    dow_values = f.dow_values if f.dow_kind is not DowKind.ANY else tuple(range(1, 8))
    after_t = after + 1
    cl = _LenientCalendar(zone, after_t)
    while True:
        if cl.get(_YEAR) > limit_year:
            return None
        sec = cl.get(_SEC)
        mi = cl.get(_MIN)
        # second
        nxt = _first_ge(seconds, sec)
        if nxt is not None:
            sec = nxt
        else:
            sec = seconds[0]
            cl.set(_MIN, mi + 1)
        cl.set(_SEC, sec)
        mi = cl.get(_MIN)
        hr = cl.get(_HOUR)
        t = -1
        # minute
        nxt = _first_ge(minutes, mi)
        if nxt is not None:
            t = mi
            mi = nxt
        else:
            mi = minutes[0]
            hr += 1
        if mi != t:
            cl.set(_SEC, 0)
            cl.set(_MIN, mi)
            cl.set_hour(hr)
            continue
        cl.set(_MIN, mi)
        hr = cl.get(_HOUR)
        day = cl.get(_DAY)
        t = -1
        # hour
        nxt = _first_ge(hours, hr)
        if nxt is not None:
            t = hr
            hr = nxt
        else:
            hr = hours[0]
            day += 1
        if hr != t:
            cl.set(_SEC, 0)
            cl.set(_MIN, 0)
            cl.set(_DAY, day)
            cl.set_hour(hr)
            continue
        cl.set(_HOUR, hr)
        day = cl.get(_DAY)
        mon = cl.get(_MONTH)
        t = -1
        tmon = mon
        if f.dow_kind is DowKind.NONE:
            year = cl.get(_YEAR)
            if f.dom_kind is DomKind.LAST or f.dom_kind is DomKind.LAST_WEEKDAY:
                t = day
                day = _last_day(mon, year) - f.dom_offset
                if f.dom_kind is DomKind.LAST:
                    if t > day:
                        mon += 1
                        if mon > 12:
                            mon = 1
                            cl.set(_YEAR, year + 1)
                        day = 1
                else:
                    wday = _w_day(zone, year, mon, day)
                    if _w_before(zone, year, mon, wday, hr, mi, sec, after_t):
                        day = 1
                        mon += 1
                    else:
                        day = wday
            elif f.dom_kind is DomKind.NEAREST:
                t = day
                day = dom_values[0]
                wday = _w_day(zone, year, mon, day)
                if _w_before(zone, year, mon, wday, hr, mi, sec, after_t):
                    day = dom_values[0]
                    mon += 1
                else:
                    day = wday
            else:
                nxt = _first_ge(dom_values, day)
                if nxt is not None:
                    t = day
                    day = nxt
                    if day > _last_day(mon, year):
                        day = dom_values[0]
                        mon += 1
                else:
                    day = dom_values[0]
                    mon += 1
            if day != t or mon != tmon:
                cl.reset_time()
                cl.set(_DAY, day)
                cl.set(_MONTH, mon)
                continue
        else:
            want = dow_values[0]
            c_dow = cl.day_of_week()
            year = cl.get(_YEAR)
            if f.dow_kind is DowKind.LAST:
                add = _days_to(c_dow, want)
                last = _last_day(mon, year)
                if day + add > last:
                    cl.reset_time()
                    cl.set(_DAY, 1)
                    cl.set(_MONTH, mon + 1)
                    continue
                while day + add + 7 <= last:
                    add += 7
                day += add
                if add > 0:
                    cl.reset_time()
                    cl.set(_DAY, day)
                    cl.set(_MONTH, mon)
                    continue
            elif f.dow_kind is DowKind.NTH:
                add = _days_to(c_dow, want)
                shifted = add > 0
                day += add
                week = day // 7 + (1 if day % 7 > 0 else 0)
                add = (f.dow_nth - week) * 7
                day += add
                if add < 0 or day > _last_day(mon, year):
                    cl.reset_time()
                    cl.set(_DAY, 1)
                    cl.set(_MONTH, mon + 1)
                    continue
                if add > 0 or shifted:
                    cl.reset_time()
                    cl.set(_DAY, day)
                    cl.set(_MONTH, mon)
                    continue
            else:
                nxt = _first_ge(dow_values, c_dow)
                want = nxt if nxt is not None else dow_values[0]
                add = _days_to(c_dow, want)
                if day + add > _last_day(mon, year):
                    cl.reset_time()
                    cl.set(_DAY, 1)
                    cl.set(_MONTH, mon + 1)
                    continue
                if add > 0:
                    cl.reset_time()
                    cl.set(_DAY, day + add)
                    cl.set(_MONTH, mon)
                    continue
        cl.set(_DAY, day)
        mon = cl.get(_MONTH)
        year = cl.get(_YEAR)
        t = -1
        if year > limit_year:
            return None
        # month
        nxt = _first_ge(months, mon)
        if nxt is not None:
            t = mon
            mon = nxt
        else:
            mon = months[0]
            year += 1
        if mon != t:
            cl.reset_time()
            cl.set(_DAY, 1)
            cl.set(_MONTH, mon)
            cl.set(_YEAR, year)
            continue
        cl.set(_MONTH, mon)
        year = cl.get(_YEAR)
        t = -1
        # year
        if years is not None:
            nxt = _first_ge(years, year)
            if nxt is None:
                return None
            t = year
            year = nxt
            if year != t:
                cl.reset_time()
                cl.set(_DAY, 1)
                cl.set(_MONTH, 1)
                cl.set(_YEAR, year)
                continue
        cl.set(_YEAR, year)
        return cl.time()


def _days_to(c_dow: int, want: int) -> int:
    if c_dow < want:
        return want - c_dow
    if c_dow > want:
        return want + 7 - c_dow
    return 0


def _w_day(zone: tzinfo, year: int, mon: int, day: int) -> int:
    """Quartz's nearest-weekday adjustment, reading the weekday of `day` leniently."""
    last = _last_day(mon, year)
    probe = _LenientCalendar.from_fields(zone, [0, 0, 0, day, mon, year])
    dow = probe.day_of_week()
    if dow == 7 and day == 1:
        return day + 2
    if dow == 7:
        return day - 1
    if dow == 1 and day == last:
        return day - 2
    if dow == 1:
        return day + 1
    return day


def _w_before(zone: tzinfo, year: int, mon: int, day: int, hr: int, mi: int, sec: int, after_t: int) -> bool:
    """Quartz: is the W day (with the cursor's time of day) before the search start?"""
    probe = _LenientCalendar.from_fields(zone, [sec, mi, hr, day, mon, year])
    return probe.time() < after_t
