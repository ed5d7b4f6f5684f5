"""Calendars: sets of excluded times that a trigger skips (Quartz's ``org.quartz.Calendar`` family).

Pure: nothing here reads a clock.  A calendar is an immutable value built by
:func:`parse_calendar` from external input; each may extend a ``base`` calendar (a time is
included only when the base includes it too) and reads wall-clock fields in its own
``timezone`` (default UTC).  The six types follow the Quartz 2.3.2 classes of the same
names (``HolidayCalendar``, ``AnnualCalendar``, ``WeeklyCalendar``, ``MonthlyCalendar``,
``DailyCalendar``, ``CronCalendar``) with these documented differences:

* ``next_included_time(dt)`` is always the earliest included instant at or after ``dt``, or
  None when the calendar excludes everything within a century.  (Quartz's versions disagree
  with each other: ``HolidayCalendar`` can answer the midnight *before* ``dt``, the daily and
  cron ones answer strictly after ``dt``, ``WeeklyCalendar`` answers 0 when all days are
  excluded.)
* ``daily``: the excluded range is ``[start, end]`` of the wall clock, both inclusive, to the
  millisecond, as Quartz; Quartz's non-inverted ``DailyCalendar`` also excludes the two
  instants 00:00:00.000 and 23:59:59.999 of every day (a quirk of its strict comparisons),
  which we do not: a midnight fire is kept.
* Wall-clock fields are read from the instant (``dt.astimezone(zone)``); day starts and the
  range bounds of a ``daily`` calendar become instants as ``java.util.Calendar`` makes them (a
  time in a gap or a repeated hour is its later reading), so they agree with Quartz across DST.
* A chain whose calendars are in different time zones: Quartz advances in whole days of the
  outer calendar and can step over an included stretch; ``next_included_time`` does not.
"""

from __future__ import annotations

import calendar as _cal
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from woow_scheduler.cron import CronExpression
from woow_scheduler.cron.zones import get_zone
from woow_scheduler.errors import InvalidCalendar, InvalidInput

__all__ = [
    "AnnualCalendar",
    "Calendar",
    "CronCalendar",
    "DailyCalendar",
    "HolidayCalendar",
    "MonthlyCalendar",
    "WeeklyCalendar",
    "calendar_json",
    "parse_calendar",
]

DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # index = date.weekday()
_MS = timedelta(milliseconds=1)
_HORIZON_YEARS = 100  # as Quartz's YEAR_TO_GIVEUP_SCHEDULING_AT (the current year + 100)
_MAX_STEPS = 20000


def _aware(dt: datetime, name: str = "dt") -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInput(f"{name}: {dt.isoformat()} is naive; pass an aware datetime", field=name)
    return dt


def local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """The instant (UTC) of a wall-clock time on a day: a time in a spring-forward gap is moved
    forward by the gap, a repeated time is its first occurrence (the ``wall_clock`` policy)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def java_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """As ``java.util.Calendar`` reads a wall-clock time: of the two readings of a time in a gap
    or in a repeated hour, the later instant (calendars' day and range bounds, as Quartz)."""
    naive = datetime.combine(day, at)
    # (aware datetimes sharing a tzinfo compare by wall time, ignoring fold: compare in UTC)
    return max(naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))


def _next_midnight(dt: datetime, zone: tzinfo) -> datetime:
    return java_instant(dt.astimezone(zone).date() + timedelta(days=1), time(0), zone)


class _CalendarBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    description: str | None = Field(default=None, max_length=500)
    base: AnyCalendar | None = None

    excludes_all_days: ClassVar[bool] = False

    @field_validator("timezone", mode="before")
    @classmethod
    def _zone_name(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidCalendar(f"timezone: {value!r} must be an IANA time zone name", field="timezone")
        try:
            get_zone(value)
        except InvalidInput:
            raise InvalidCalendar(
                f"timezone: {value!r} is not a known IANA time zone name (e.g. 'UTC', 'Europe/Berlin')",
                field="timezone",
            ) from None
        return value

    @property
    def zone(self) -> tzinfo:
        return get_zone(self.timezone)

    # -- per type ----------------------------------------------------------------------------
    def _own_included(self, dt: datetime) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _own_next(self, dt: datetime) -> datetime | None:  # pragma: no cover - abstract
        """For a `dt` this calendar itself excludes: a later instant where its exclusion ends."""
        raise NotImplementedError

    def _excludes_everything(self) -> bool:
        return self.base is not None and self.base._excludes_everything()

    # -- the Quartz interface ----------------------------------------------------------------
    def is_time_included(self, dt: datetime) -> bool:
        """Whether `dt` is included: by the base calendar (if any) and by this one."""
        _aware(dt)
        if self.base is not None and not self.base.is_time_included(dt):
            return False
        return self._own_included(dt)

    def next_included_time(self, dt: datetime) -> datetime | None:
        """The earliest included instant at or after `dt` (UTC), or None if there is none within
        a century (a calendar that excludes everything)."""
        t = _aware(dt).astimezone(UTC)
        if self._excludes_everything():
            return None
        horizon = t.replace(year=min(t.year + _HORIZON_YEARS, 9998), month=1, day=1)
        for _ in range(_MAX_STEPS):
            if t > horizon:
                return None
            if self.base is not None and not self.base.is_time_included(t):
                nxt = self.base.next_included_time(t)
            elif not self._own_included(t):
                nxt = self._own_next(t)
            else:
                return t
            if nxt is None:
                return None
            t = max(nxt, t + timedelta(microseconds=1))
        return None

    def describe(self) -> str:
        text = self._describe()
        if self.timezone != "UTC":
            text += f" ({self.timezone})"
        if self.base is not None:
            text += f", and {self.base.describe()}"
        return text

    def _describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class HolidayCalendar(_CalendarBase):
    """Excludes whole days given as dates (``HolidayCalendar``)."""

    type: Literal["holiday"]
    dates: tuple[date, ...]

    @field_validator("dates", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise InvalidCalendar(f"dates: {value!r} must be a list of dates like '2026-12-25'", field="dates")
        out = set()
        for item in value:
            if isinstance(item, date) and not isinstance(item, datetime):
                out.add(item)
                continue
            try:
                out.add(date.fromisoformat(str(item).strip()))
            except ValueError:
                raise InvalidCalendar(f"dates: {item!r} is not a date like '2026-12-25'", field="dates") from None
        return tuple(sorted(out))

    def _own_included(self, dt: datetime) -> bool:
        return dt.astimezone(self.zone).date() not in self.dates

    def _own_next(self, dt: datetime) -> datetime | None:
        return _next_midnight(dt, self.zone)

    def _describe(self) -> str:
        return f"excluding {len(self.dates)} date{'s' if len(self.dates) != 1 else ''}"


_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")


class AnnualCalendar(_CalendarBase):
    """Excludes days of the year given as 'MM-DD', every year (``AnnualCalendar``)."""

    type: Literal["annual"]
    days: tuple[str, ...]

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise InvalidCalendar(f"days: {value!r} must be a list of 'MM-DD' like '12-25'", field="days")
        out = set()
        for item in value:
            m = _MONTH_DAY.match(str(item).strip())
            ok = m is not None and 1 <= int(m[1]) <= 12 and 1 <= int(m[2]) <= _cal.monthrange(2000, int(m[1]))[1]
            if m is None or not ok:
                raise InvalidCalendar(f"days: {item!r} is not a day of the year like '12-25'", field="days")
            out.add(f"{int(m[1]):02d}-{int(m[2]):02d}")
        return tuple(sorted(out))

    @property
    def _set(self) -> frozenset[tuple[int, int]]:
        return frozenset((int(d[:2]), int(d[3:])) for d in self.days)

    def _excludes_everything(self) -> bool:
        return len(self.days) == 366 or super()._excludes_everything()

    def _own_included(self, dt: datetime) -> bool:
        local = dt.astimezone(self.zone)
        return (local.month, local.day) not in self._set

    def _own_next(self, dt: datetime) -> datetime | None:
        return _next_midnight(dt, self.zone)

    def _describe(self) -> str:
        return f"excluding every {', '.join(self.days)}"


_FULL_NAMES = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def parse_weekday(text: Any, field: str) -> str:
    """'MON' or 'monday' -> 'MON'."""
    name = str(text).strip().upper()
    for short, full in zip(DAY_NAMES, _FULL_NAMES, strict=True):
        if name in (short, full):
            return short
    raise InvalidCalendar(f"{field}: {text!r} is not a day of the week (MON..SUN)", field=field)


class WeeklyCalendar(_CalendarBase):
    """Excludes days of the week; Quartz's default excludes SAT and SUN (``WeeklyCalendar``)."""

    type: Literal["weekly"]
    exclude: tuple[str, ...] = ("SAT", "SUN")

    @field_validator("exclude", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise InvalidCalendar(f"exclude: {value!r} must be a list of days like ['SAT', 'SUN']", field="exclude")
        names = {parse_weekday(v, "exclude") for v in value}
        return tuple(n for n in DAY_NAMES if n in names)

    def _excludes_everything(self) -> bool:
        return len(self.exclude) == 7 or super()._excludes_everything()

    def _own_included(self, dt: datetime) -> bool:
        return DAY_NAMES[dt.astimezone(self.zone).weekday()] not in self.exclude

    def _own_next(self, dt: datetime) -> datetime | None:
        return _next_midnight(dt, self.zone)

    def _describe(self) -> str:
        return f"excluding {', '.join(self.exclude) or 'no day'}"


class MonthlyCalendar(_CalendarBase):
    """Excludes days of the month 1..31 (``MonthlyCalendar``)."""

    type: Literal["monthly"]
    exclude: tuple[int, ...]

    @field_validator("exclude", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise InvalidCalendar(f"exclude: {value!r} must be a list of days of the month 1-31", field="exclude")
        out = set()
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | str) or not str(v).strip().isdigit():
                raise InvalidCalendar(f"exclude: {v!r} is not a day of the month 1-31", field="exclude")
            n = int(str(v).strip())
            if not 1 <= n <= 31:
                raise InvalidCalendar(f"exclude: {v!r} is out of range 1-31", field="exclude")
            out.add(n)
        return tuple(sorted(out))

    def _excludes_everything(self) -> bool:
        return len(self.exclude) == 31 or super()._excludes_everything()

    def _own_included(self, dt: datetime) -> bool:
        return dt.astimezone(self.zone).day not in self.exclude

    def _own_next(self, dt: datetime) -> datetime | None:
        return _next_midnight(dt, self.zone)

    def _describe(self) -> str:
        return f"excluding day{'s' if len(self.exclude) != 1 else ''} {', '.join(map(str, self.exclude))} of each month"


_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[:.](\d{1,3}))?)?$")


def parse_time_of_day(text: str, field: str) -> time:
    """'09:00', '09:00:30' or '09:00:30.250' (Quartz also takes '09:00:30:250')."""
    m = _TIME.match(text.strip())
    if m is not None:
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        ms = int((m[4] or "0").ljust(3, "0"))
        if h <= 23 and mi <= 59 and s <= 59:
            return time(h, mi, s, ms * 1000)
    raise InvalidCalendar(f"{field}: {text!r} is not a time of day like '09:00' or '17:30:00'", field=field)


def _fmt_time(t: time) -> str:
    text = t.strftime("%H:%M:%S")
    return text + (f".{t.microsecond // 1000:03d}" if t.microsecond else "")


class DailyCalendar(_CalendarBase):
    """Excludes a time range of every day, 'HH:MM[:SS[.mmm]]-HH:MM[:SS[.mmm]]', both ends
    inclusive; ``invert`` excludes everything but the range (``DailyCalendar``)."""

    type: Literal["daily"]
    range: str
    invert: bool = False

    @field_validator("range", mode="before")
    @classmethod
    def _range(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.count("-") != 1:
            raise InvalidCalendar(f"range: {value!r} must be 'HH:MM-HH:MM' like '08:00-17:00'", field="range")
        a, b = (parse_time_of_day(x, "range") for x in value.split("-"))
        if not a < b:
            raise InvalidCalendar(
                f"range: {value!r} must start before it ends (a range cannot cross midnight; use invert)",
                field="range",
            )
        return f"{_fmt_time(a)}-{_fmt_time(b)}"

    @property
    def bounds(self) -> tuple[time, time]:
        a, b = self.range.split("-")
        return parse_time_of_day(a, "range"), parse_time_of_day(b, "range")

    def _range_on(self, day: date) -> tuple[datetime, datetime]:
        start, end = self.bounds
        return java_instant(day, start, self.zone), java_instant(day, end, self.zone)

    def _own_included(self, dt: datetime) -> bool:
        lo, hi = self._range_on(dt.astimezone(self.zone).date())
        inside = lo <= dt <= hi
        return inside if self.invert else not inside

    def _own_next(self, dt: datetime) -> datetime | None:
        day = dt.astimezone(self.zone).date()
        lo, hi = self._range_on(day)
        if not self.invert:  # inside the range: just after its end
            return hi + _MS
        if dt < lo:
            return lo
        return self._range_on(day + timedelta(days=1))[0]

    def _describe(self) -> str:
        return f"{'only' if self.invert else 'excluding'} {self.range} every day"


class CronCalendar(_CalendarBase):
    """Excludes every second a cron expression matches (``CronCalendar``)."""

    type: Literal["cron"]
    expression: str

    @field_validator("expression", mode="before")
    @classmethod
    def _expr(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidCalendar(f"expression: {value!r} must be a cron expression", field="expression")
        try:
            return CronExpression(value).expression
        except InvalidInput as exc:
            text = str(exc)
            text = text if text.startswith("expression:") else f"expression: {text}"
            raise InvalidCalendar(text, field="expression") from None

    @property
    def cron(self) -> CronExpression:
        return CronExpression.cached(self.expression, self.timezone)

    def _matches(self, dt: datetime) -> bool:
        return self.cron.matches(dt.replace(microsecond=0))

    def _own_included(self, dt: datetime) -> bool:
        return not self._matches(dt)

    def _own_next(self, dt: datetime) -> datetime | None:
        """The first second at or after `dt` that the expression does not match: steps by the
        largest local unit (second, minute, hour, day) whose smaller fields all match."""
        f = self.cron.fields
        zone = self.zone
        all_s, all_m, all_h = len(f.seconds) == 60, len(f.minutes) == 60, len(f.hours) == 24
        t = dt.replace(microsecond=0)
        if t < dt:
            t += timedelta(seconds=1)
        for _ in range(5000):
            if not self._matches(t):
                return t
            local = t.astimezone(zone)
            if all_s and all_m and all_h:
                t = _next_midnight(t, zone)
            elif all_s and all_m:
                t += timedelta(seconds=3600 - local.minute * 60 - local.second)
            elif all_s:
                t += timedelta(seconds=60 - local.second)
            else:
                t += timedelta(seconds=1)
        return None

    def _describe(self) -> str:
        return f"excluding cron {self.expression!r}"


AnyCalendar = Annotated[
    HolidayCalendar | AnnualCalendar | WeeklyCalendar | MonthlyCalendar | DailyCalendar | CronCalendar,
    Field(discriminator="type"),
]
Calendar = HolidayCalendar | AnnualCalendar | WeeklyCalendar | MonthlyCalendar | DailyCalendar | CronCalendar
for _model in (HolidayCalendar, AnnualCalendar, WeeklyCalendar, MonthlyCalendar, DailyCalendar, CronCalendar):
    _model.model_rebuild()
_ADAPTER: TypeAdapter[Calendar] = TypeAdapter(AnyCalendar)
CALENDAR_TYPES = ("holiday", "annual", "weekly", "monthly", "daily", "cron")
_MAX_DEPTH = 8


def _depth(data: Any) -> int:
    n = 0
    while isinstance(data, Mapping) and data.get("base") is not None:
        data = data["base"]
        n += 1
        if n > _MAX_DEPTH:
            break
    return n


def _one_line(exc: ValidationError) -> InvalidCalendar:
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    loc = [str(p) for p in err["loc"] if p not in CALENDAR_TYPES]
    field = ".".join(loc) or "calendar"
    prefix = field.rsplit(".", 1)[0] + "." if "." in field else ""
    if isinstance(cause, InvalidInput):
        return InvalidCalendar(f"{prefix}{cause}", field=field)
    kind = err["type"]
    if kind == "union_tag_not_found":
        name = f"{'.'.join(loc)}.type" if loc else "type"
        return InvalidCalendar(f"{name}: missing; expected one of {', '.join(CALENDAR_TYPES)}", field=name)
    if kind == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        name = f"{'.'.join(loc)}.type" if loc else "type"
        return InvalidCalendar(f"{name}: {tag!r} is not one of {', '.join(CALENDAR_TYPES)}", field=name)
    if kind == "missing":
        return InvalidCalendar(f"{field}: is required", field=field)
    if kind == "extra_forbidden":
        return InvalidCalendar(f"{field}: is not a known field", field=field)
    msg = str(err["msg"]).replace("\n", " ")
    return InvalidCalendar(f"{field}: {err.get('input')!r} is invalid: {msg[:1].lower()}{msg[1:]}", field=field)


def parse_calendar(data: Mapping[str, Any]) -> Calendar:
    """Validate external input into a calendar; one-line InvalidCalendar naming the field."""
    if not isinstance(data, Mapping):
        raise InvalidCalendar(
            f"calendar: {data!r} must be a mapping with a 'type' of {', '.join(CALENDAR_TYPES)}", field="calendar"
        )
    if _depth(data) > _MAX_DEPTH:
        raise InvalidCalendar(f"base: calendars may be chained at most {_MAX_DEPTH} deep", field="base")
    if "type" not in data:
        raise InvalidCalendar(f"type: missing; expected one of {', '.join(CALENDAR_TYPES)}", field="type")
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        raise _one_line(exc) from None


def calendar_json(cal: Calendar) -> dict[str, Any]:
    """The canonical stored form (defaults left out, so equal calendars compare equal)."""
    return cal.model_dump(mode="json", exclude_defaults=True)
