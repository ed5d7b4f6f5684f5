"""CronExpression: the public object (parse once, then compute fire times)."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from woow_scheduler.cron import quartz
from woow_scheduler.cron.describe import describe
from woow_scheduler.cron.engine import MAX_SEARCH_YEAR, Matcher
from woow_scheduler.cron.fields import STORED_MAX_YEAR, CronFields, Dialect, DstPolicy
from woow_scheduler.cron.parser import parse
from woow_scheduler.cron.zones import (
    EPOCH,
    get_zone,
    is_fixed,
    next_transition,
    offset_at,
    prev_transition,
)
from woow_scheduler.errors import InvalidCronExpression, InvalidInput

_SECOND = timedelta(seconds=1)
_SEARCH_YEARS = 401  # the Gregorian calendar repeats every 400 years
_timegm = calendar.timegm


def _zone_of(timezone: str | tzinfo) -> ZoneInfo:
    if isinstance(timezone, ZoneInfo):
        return timezone
    if isinstance(timezone, str):
        return get_zone(timezone)
    if timezone is UTC:
        return get_zone("UTC")
    raise InvalidCronExpression(
        f"timezone: {timezone!r} must be an IANA time zone name or a zoneinfo.ZoneInfo", field="timezone"
    )


def _policy_of(value: str | DstPolicy) -> DstPolicy:
    try:
        return DstPolicy(value)
    except ValueError:
        raise InvalidCronExpression(
            f"dst_policy: {value!r} must be one of {', '.join(p.value for p in DstPolicy)}",
            field="dst_policy",
        ) from None


def to_epoch(moment: datetime, name: str = "after") -> int:
    """Whole epoch seconds (floored) of an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{name}: {moment.isoformat()} is naive; pass an aware datetime", field=name)
    return (moment - EPOCH) // _SECOND


def from_epoch(t: int) -> datetime:
    return EPOCH + timedelta(seconds=t)


class CronExpression:
    """A parsed Quartz (or Unix) cron expression bound to a time zone and a DST policy.

    >>> expr = CronExpression("0 0 9 ? * MON-FRI", timezone="Europe/Berlin")
    >>> expr.next_after(datetime(2026, 1, 1, tzinfo=UTC)).isoformat()
    '2026-01-01T08:00:00+00:00'
    """

    __slots__ = ("_fields", "_fires", "_fixed", "_fixed_offset", "_matcher", "_policy", "_zone")

    def __init__(
        self,
        expression: str,
        timezone: str | tzinfo = "UTC",
        dst_policy: str | DstPolicy = DstPolicy.WALL_CLOCK,
        *,
        last_year: int | None = None,
    ) -> None:
        """``last_year``: the latest year the year field may name (default: the current year + 100,
        as Quartz; expressions validated before pass ``fields.STORED_MAX_YEAR``)."""
        self._fields: CronFields = parse(expression, last_year=last_year)
        self._zone = _zone_of(timezone)
        self._policy = _policy_of(dst_policy)
        self._matcher = Matcher(self._fields)
        self._fires = self._matcher.ever_fires()
        self._fixed = is_fixed(self._zone)
        self._fixed_offset = offset_at(self._zone, 0) if self._fixed else 0

    @classmethod
    def cached(
        cls, expression: str, timezone: str = "UTC", dst_policy: str | DstPolicy = DstPolicy.WALL_CLOCK
    ) -> CronExpression:
        """A shared instance per (expression, zone name, policy): for hot paths such as beat.

        For expressions validated when they were written (stored specs): a year field that was
        within the current year + 100 then stays valid."""
        return _cached(expression, timezone, _policy_of(dst_policy))

    # -- properties ----------------------------------------------------------------------
    @property
    def expression(self) -> str:
        """Normalised, re-parseable text (upper-case names, single spaces)."""
        return self._fields.text

    @property
    def dialect(self) -> Dialect:
        return self._fields.dialect

    @property
    def fields(self) -> CronFields:
        return self._fields

    @property
    def timezone(self) -> ZoneInfo:
        return self._zone

    @property
    def timezone_name(self) -> str:
        return self._zone.key

    @property
    def dst_policy(self) -> DstPolicy:
        return self._policy

    def __str__(self) -> str:
        if self._fields.dialect is Dialect.UNIX:
            return f"{self._fields.text} (unix)"
        return self._fields.text

    def __repr__(self) -> str:
        return (
            f"CronExpression({self._fields.text!r}, timezone={self._zone.key!r}, "
            f"dst_policy={self._policy.value!r})  # {self._fields.dialect.value}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronExpression):
            return NotImplemented
        return (self._fields.text, self._zone.key, self._policy) == (
            other._fields.text,
            other._zone.key,
            other._policy,
        )

    def __hash__(self) -> int:
        return hash((self._fields.text, self._zone.key, self._policy))

    def describe(self) -> str:
        """A short English description, e.g. 'at 09:00:00, Monday through Friday'."""
        return describe(self._fields)

    # -- fire times ----------------------------------------------------------------------
    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (floored to the second), in UTC, or None."""
        t = self.next_epoch(to_epoch(after))
        return None if t is None else EPOCH + timedelta(seconds=t)

    def iter_after(self, start: datetime) -> Iterator[datetime]:
        """Successive fire times strictly after `start`."""
        t: int | None = to_epoch(start, "start")
        while True:
            t = self.next_epoch(t)  # type: ignore[arg-type]  # None ends the loop below
            if t is None:
                return
            yield EPOCH + timedelta(seconds=t)

    def matches(self, moment: datetime) -> bool:
        """Whether the local wall-clock reading of `moment` matches every field."""
        local = moment.astimezone(self._zone)
        return local.microsecond == 0 and self._matcher.matches(
            local.year, local.month, local.day, local.hour, local.minute, local.second
        )

    def next_epoch(self, t: int) -> int | None:
        """next_after on whole epoch seconds."""
        if not self._fires:
            return None
        if self._policy is DstPolicy.QUARTZ:
            return self._next_quartz(t)
        if self._fixed:
            o = self._fixed_offset
            lo = datetime.fromtimestamp(t + 1 + o, UTC)
            w = self._matcher.next_wall(lo.year, lo.month, lo.day, lo.hour, lo.minute, lo.second, self._limit(lo.year))
            return None if w is None else _timegm(w) - o
        return self._next_wall_clock(t)

    def _limit(self, year: int) -> int:
        years = self._fields.years
        if years is not None:
            return years[-1]
        return min(year + _SEARCH_YEARS, MAX_SEARCH_YEAR)

    def _wall_from(self, lo: int, offset: int) -> tuple[int, int, int, int, int, int] | None:
        w = datetime.fromtimestamp(lo + offset, UTC)
        return self._matcher.next_wall(w.year, w.month, w.day, w.hour, w.minute, w.second, self._limit(w.year))

    def _next_wall_clock(self, t: int) -> int | None:
        """Segment walk: between two offset changes wall time is instant + offset.

        Candidates in a segment: instants whose wall reading matches (a repeated local time only
        on its first pass unless every hour matches) and, right after a spring-forward change,
        matching local times inside the gap fired at their fold=0 instant.
        """
        zone = self._zone
        every_hour = self._fields.every_hour
        lo = t + 1
        while True:
            o = offset_at(zone, lo)
            prev = prev_transition(zone, lo)
            lo1 = lo
            gap_cand: int | None = None
            if prev is not None and lo - prev.at < 86400:
                shift = prev.after - prev.before
                if shift < 0 and not every_hour:
                    lo1 = max(lo, prev.at - shift)  # skip the second pass of the repeated hour
                elif shift > 0 and lo < prev.at + shift:
                    w2 = self._wall_from(lo, prev.before)
                    if w2 is not None:
                        i2 = _timegm(w2) - prev.before
                        if i2 < prev.at + shift:
                            gap_cand = i2
            w = self._wall_from(lo1, o)
            i1 = None if w is None else _timegm(w) - o
            # no matching wall time at or after this one: only a change that turns the clock
            # back (by hours, within days) could show earlier wall times again
            horizon = i1 if i1 is not None else lo + 2 * 86400
            nxt = next_transition(zone, lo, horizon)
            if nxt is not None and i1 is not None and i1 >= nxt.at:
                i1 = None
            if i1 is not None or gap_cand is not None:
                return min(x for x in (i1, gap_cand) if x is not None)
            if nxt is None:
                return None
            lo = nxt.at

    def _next_quartz(self, t: int) -> int | None:
        zone = self._zone
        limit = self._limit(from_epoch(t).year + 1)
        if self._fields.dialect is Dialect.QUARTZ:
            try:
                return quartz.get_time_after(self._matcher, zone, t, limit)
            except OverflowError:
                return None
        # Unix expressions under the quartz policy: wall-clock search from the local reading,
        # the later instant for repeated times, nonexistent times pushed forward (lenient).
        local = datetime.fromtimestamp(t + 1, zone)
        cur = (local.year, local.month, local.day, local.hour, local.minute, local.second)
        while True:
            w = self._matcher.next_wall(*cur, limit)
            if w is None:
                return None
            naive = datetime(*w)
            inst = max(_timegm(naive.replace(tzinfo=zone, fold=f).utctimetuple()) for f in (0, 1))
            back = datetime.fromtimestamp(inst, zone)
            if back.replace(tzinfo=None) == naive:
                return inst
            cur = (back.year, back.month, back.day, back.hour, back.minute, back.second)


@lru_cache(maxsize=4096)
def _cached(expression: str, timezone: str, dst_policy: DstPolicy) -> CronExpression:
    return CronExpression(expression, timezone, dst_policy, last_year=STORED_MAX_YEAR)
