"""The fast search: the earliest wall-clock time at or after a given one that matches.

Everything here works on naive wall-clock fields (year, month, day, hour, minute, second);
time zones are handled by the callers.  The search jumps field by field using lookup tables
built once per expression (``next allowed value >= v``, with a -1 sentinel one past the end
so that carries need no bounds checks) and a per-month cache of matching days.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left

from woow_scheduler.cron.fields import CronFields, DomKind, DowKind

Wall = tuple[int, int, int, int, int, int]
_MAX_SEARCH_YEAR = 9998
_CACHE_LIMIT = 4096
_ALL_DAYS = {n: tuple(range(1, n + 1)) for n in (28, 29, 30, 31)}


def _next_table(values: tuple[int, ...], size: int) -> tuple[int, ...]:
    """table[v] = smallest allowed value >= v, or -1; table[size] = -1 (carry sentinel)."""
    table = [-1] * (size + 1)
    nxt = -1
    allowed = set(values)
    for v in range(size - 1, -1, -1):
        if v in allowed:
            nxt = v
        table[v] = nxt
    return tuple(table)


def quartz_weekday(year: int, month: int, day: int) -> int:
    """Day of week in Quartz numbering, 1=SUN .. 7=SAT (lenient: day may exceed the month)."""
    return (calendar.weekday(year, month, 1) + day) % 7 + 1


def _nearest_weekday(day: int, dow: int, last: int) -> int:
    """Quartz's W rule: Saturday moves back (but the 1st moves to Monday the 3rd),
    Sunday moves forward (but the month's last day moves back to Friday)."""
    if dow == 7:
        return day + 2 if day == 1 else day - 1
    if dow == 1:
        return day - 2 if day == last else day + 1
    return day


class Matcher:
    """Precomputed tables for one parsed expression."""

    __slots__ = ("_day_cache", "_hour", "_minute", "_month", "_second", "_year_set", "fields", "years")

    def __init__(self, fields: CronFields) -> None:
        self.fields = fields
        self._second = _next_table(fields.seconds, 60)
        self._minute = _next_table(fields.minutes, 60)
        self._hour = _next_table(fields.hours, 24)
        self._month = _next_table(tuple(m - 1 for m in fields.months), 12)
        self.years = fields.years
        self._year_set = frozenset(fields.years) if fields.years is not None else None
        self._day_cache: dict[int, tuple[int, ...]] = {}

    # -- days ------------------------------------------------------------------------------
    def days(self, year: int, month: int) -> tuple[int, ...]:
        """Sorted matching days of the month (cached)."""
        key = year * 12 + month
        got = self._day_cache.get(key)
        if got is None:
            if len(self._day_cache) >= _CACHE_LIMIT:
                self._day_cache.clear()
            got = self._day_cache[key] = self.compute_days(year, month)
        return got

    def compute_days(self, year: int, month: int) -> tuple[int, ...]:
        f = self.fields
        last = calendar.monthrange(year, month)[1]
        dk, wk = f.dom_kind, f.dow_kind
        if dk is DomKind.ANY and wk in (DowKind.ANY, DowKind.NONE):
            return _ALL_DAYS[last]
        if dk is DomKind.NONE and wk is DowKind.ANY:
            return _ALL_DAYS[last]
        first = calendar.weekday(year, month, 1)  # Monday=0
        out: set[int] = set()
        if dk is DomKind.SET:
            out.update(d for d in f.dom_values if d <= last)
        elif dk is DomKind.LAST:
            d = last - f.dom_offset
            if d >= 1:
                out.add(d)
        elif dk is DomKind.LAST_WEEKDAY:
            d = last - f.dom_offset
            if d >= 1:
                d = _nearest_weekday(d, (first + d) % 7 + 1, last)
                if 1 <= d <= last:
                    out.add(d)
        elif dk is DomKind.NEAREST:
            n = f.dom_values[0]
            # Quartz reads the weekday of day n leniently (31 in a 30-day month is the next 1st)
            d = _nearest_weekday(n, (first + n) % 7 + 1, last)
            if 1 <= d <= last:
                out.add(d)
        if wk is DowKind.SET or (wk is DowKind.ANY and f.day_or):
            wanted = set(f.dow_values) if wk is DowKind.SET else set(range(1, 8))
            out.update(d for d in range(1, last + 1) if (first + d) % 7 + 1 in wanted)
        elif wk is DowKind.LAST:
            target = f.dow_values[0]
            d = last
            while (first + d) % 7 + 1 != target:
                d -= 1
            out.add(d)
        elif wk is DowKind.NTH:
            target = f.dow_values[0]
            d = 1 + (target - ((first + 1) % 7 + 1)) % 7 + 7 * (f.dow_nth - 1)
            if d <= last:
                out.add(d)
        return tuple(sorted(out))

    def ever_fires(self) -> bool:
        """Whether any day ever matches (the calendar repeats every 400 years)."""
        years = self.years if self.years is not None else range(2000, 2400)
        return any(self.compute_days(y, m) for y in years for m in self.fields.months)

    # -- search ----------------------------------------------------------------------------
    def next_wall(self, y: int, mo: int, d: int, h: int, mi: int, s: int, limit_year: int) -> Wall | None:
        """The earliest matching wall time >= the given one, or None past limit_year."""
        sec_t, min_t, hour_t, mon_t = self._second, self._minute, self._hour, self._month
        years, year_set = self.years, self._year_set
        while True:
            if y > limit_year:
                return None
            if year_set is not None and y not in year_set:
                i = bisect_left(years, y)  # type: ignore[arg-type]  # years is set with year_set
                if i == len(years):  # type: ignore[arg-type]
                    return None
                y = years[i]  # type: ignore[index]
                mo, d, h, mi, s = 1, 1, 0, 0, 0
                continue
            m2 = mon_t[mo - 1] + 1
            if m2 == 0:
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                continue
            if m2 != mo:
                mo, d, h, mi, s = m2, 1, 0, 0, 0
            days = self.days(y, mo)
            i = bisect_left(days, d)
            if i == len(days):
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                continue
            d2 = days[i]
            if d2 != d:
                d, h, mi, s = d2, 0, 0, 0
            h2 = hour_t[h]
            if h2 < 0:
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            if h2 != h:
                h, mi, s = h2, 0, 0
            m3 = min_t[mi]
            if m3 < 0:
                h, mi, s = h + 1, 0, 0
                continue
            if m3 != mi:
                mi, s = m3, 0
            s2 = sec_t[s]
            if s2 < 0:
                mi, s = mi + 1, 0
                continue
            return (y, mo, d, h, mi, s2)

    def matches(self, y: int, mo: int, d: int, h: int, mi: int, s: int) -> bool:
        """Whether the wall time matches every field."""
        return (
            self._second[s] == s
            and self._minute[mi] == mi
            and self._hour[h] == h
            and self._month[mo - 1] == mo - 1
            and (self._year_set is None or y in self._year_set)
            and d in self.days(y, mo)
        )


MAX_SEARCH_YEAR = _MAX_SEARCH_YEAR
