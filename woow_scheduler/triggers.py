"""Trigger specifications and their pure fire-time math.

Types: cron, interval (Quartz's SimpleTrigger), once, daily_time_interval and calendar_interval
(the two Quartz wall-clock triggers, whose math lives in :mod:`woow_scheduler.trigger_math`).
Any of them may skip the times a :mod:`~woow_scheduler.calendars` calendar excludes.

Pure: nothing here reads a clock; callers pass ``now``.  All datetimes stored on a spec are
aware UTC.  External input goes through :func:`parse_trigger_spec`, which resolves defaults
that need a clock, interprets naive datetimes in the spec's ``timezone`` and turns every
rejection into a one-line :class:`~woow_scheduler.errors.InvalidTriggerSpec` (or
:class:`~woow_scheduler.errors.InvalidCronExpression` for the expression itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from woow_scheduler import trigger_math
from woow_scheduler.calendars import Calendar, parse_time_of_day
from woow_scheduler.cron import CronExpression
from woow_scheduler.cron.fields import STORED_MAX_YEAR, DstPolicy, max_year
from woow_scheduler.cron.parser import parse as parse_cron
from woow_scheduler.cron.zones import get_zone
from woow_scheduler.errors import InvalidCronExpression, InvalidInput, InvalidTriggerSpec
from woow_scheduler.trigger_math import CalendarUnit, jitter_offset

__all__ = [
    "CalendarIntervalSpec",
    "CalendarUnit",
    "CronSpec",
    "DailyTimeIntervalSpec",
    "DstPolicy",
    "IntervalSpec",
    "MisfirePolicy",
    "OnceSpec",
    "TriggerSpec",
    "TriggerType",
    "format_duration",
    "jitter_offset",
    "parse_duration",
    "parse_trigger_spec",
]

_US = timedelta(microseconds=1)
_MAX_CALENDAR_SKIPS = 10000
_NAIVE_HELP = "naive datetimes are read in the trigger's timezone"


class TriggerType(StrEnum):
    CRON = "cron"
    INTERVAL = "interval"
    ONCE = "once"
    DAILY_TIME_INTERVAL = "daily_time_interval"
    CALENDAR_INTERVAL = "calendar_interval"


class MisfirePolicy(StrEnum):
    FIRE_ONCE_NOW = "fire_once_now"
    SKIP = "skip"
    FIRE_ALL = "fire_all"


# -- durations -------------------------------------------------------------------------------
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?$")
_DURATION_HELP = "must be a positive duration like 30, '5m', '1h30m', '1d'"


def parse_duration(text: str | int | float, *, field: str = "every") -> int:
    """Seconds in 300, "300", "5m", "1h30m", "1d", "2w" (whole seconds, > 0)."""
    seconds: int | None = None
    if isinstance(text, bool):
        seconds = None
    elif isinstance(text, int):
        seconds = text
    elif isinstance(text, float):
        seconds = int(text) if text.is_integer() else None
    elif isinstance(text, str):
        s = text.strip().lower()
        if s.isdigit():
            seconds = int(s)
        elif s:
            m = _DURATION.fullmatch(s)
            if m is not None and any(m.groups()):
                seconds = sum(int(v) * u for v, u in zip(m.groups(), _UNITS.values(), strict=True) if v)
    if seconds is None or seconds <= 0:
        raise InvalidTriggerSpec(f"{field}: {text!r} {_DURATION_HELP}", field=field)
    return seconds


def format_duration(seconds: int) -> str:
    """300 -> '5m', 5400 -> '1h30m', 86400 -> '1d' (inverse of parse_duration)."""
    out = []
    for unit, size in _UNITS.items():
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def _whole_second(value: datetime | None) -> datetime | None:
    """Floor a fire-time bound to the whole second.

    Fire times are whole seconds everywhere (beat's positions, the wire form of
    ``scheduled_for``, the idempotency key): a ``start_at`` at ``.500`` made an interval's fires
    fall between two positions, so every pass of beat published the same fire again.  Every
    validation of a spec (external input, a stored row, a RedBeat definition) comes through
    here, so rows stored before the floor are floored when they are read.
    """
    return None if value is None else value.replace(microsecond=0)


def _iso(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def _to_utc(value: Any, zone_name: str, field: str) -> Any:
    """Interpret a datetime (or ISO string); naive ones in the spec's time zone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidTriggerSpec(
                f"{field}: {value!r} is not an ISO 8601 datetime (e.g. 2026-01-01T09:00:00+01:00; {_NAIVE_HELP})",
                field=field,
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=get_zone(zone_name))
        return value.astimezone(UTC)
    return value


# -- the specs -------------------------------------------------------------------------------
class _SpecBase(BaseModel):
    """Fields and behaviour common to every trigger type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None
    misfire_policy: MisfirePolicy = MisfirePolicy.FIRE_ONCE_NOW
    misfire_threshold: float = Field(default=60.0, gt=0, le=366 * 86_400, allow_inf_nan=False)
    max_catchup: int = Field(default=100, ge=1, le=100_000)
    jitter: int | None = None  # seconds: each fire is dispatched within [0, jitter) after it
    priority: int = Field(default=0, ge=-1000, le=1000)  # fires due in the same second: higher first

    @field_validator("jitter", mode="before")
    @classmethod
    def _jitter(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value, field="jitter")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # unset jitter / priority are left out, so specs stored before they existed stay equal
        data: dict[str, Any] = handler(self)
        if data.get("jitter") is None:
            data.pop("jitter", None)
        if data.get("priority") == 0:
            data.pop("priority", None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _localise(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        zone_name = data.get("timezone", "UTC")
        if not isinstance(zone_name, str):
            raise InvalidTriggerSpec(f"timezone: {zone_name!r} must be an IANA time zone name", field="timezone")
        try:
            get_zone(zone_name)
        except InvalidInput:
            raise InvalidTriggerSpec(
                f"timezone: {zone_name!r} is not a known IANA time zone name (e.g. 'UTC', 'Europe/Berlin')",
                field="timezone",
            ) from None
        out = dict(data)
        for key in ("start_at", "end_at", "run_at"):
            if out.get(key) is not None:
                out[key] = _to_utc(out[key], zone_name, key)
        return out

    @field_validator("start_at", "end_at", mode="after")
    @classmethod
    def _floor(cls, value: datetime | None) -> datetime | None:
        return _whole_second(value)

    @model_validator(mode="after")
    def _window(self) -> _SpecBase:
        # both ends are inclusive whole seconds, so end_at == start_at is a one-second window (as in
        # Quartz, only an end before the start is refused); a row stored before the floor with
        # both ends inside one second stays readable
        if self.start_at is not None and self.end_at is not None and self.end_at < self.start_at:
            raise InvalidTriggerSpec(
                f"end_at: {_iso(self.end_at)} is before start_at {_iso(self.start_at)}", field="end_at"
            )
        return self

    # -- overridden per type ---------------------------------------------------------------
    def _next(self, after: datetime) -> datetime | None:
        raise NotImplementedError

    # -- common fire math ------------------------------------------------------------------
    def _bounded_next(self, after: datetime) -> datetime | None:
        if self.start_at is not None and after < self.start_at:
            after = self.start_at - _US
        fire = self._next(after)
        if fire is None or (self.end_at is not None and fire > self.end_at):
            return None
        return fire

    def next_fire_time(self, after: datetime, calendar: Calendar | None = None) -> datetime | None:
        """The first fire strictly after `after`, within start_at/end_at (both inclusive), in UTC.

        With a `calendar`, fires it excludes are skipped, as Quartz does: the trigger moves on to
        its next fire that the calendar includes; a calendar that excludes everything (or nothing
        for a century) ends the trigger.
        """
        if after.tzinfo is None or after.utcoffset() is None:
            raise InvalidInput(f"after: {after.isoformat()} is naive; pass an aware datetime", field="after")
        fire = self._bounded_next(after)
        if calendar is None:
            return fire
        give_up = after.year + trigger_math.GIVE_UP_YEARS
        for _ in range(_MAX_CALENDAR_SKIPS):
            if fire is None or calendar.is_time_included(fire):
                return fire
            included = calendar.next_included_time(fire)
            if included is None or included.year > give_up:
                return None
            fire = self._bounded_next(max(included - _US, fire))
        return None

    def iter_fire_times(self, after: datetime, calendar: Calendar | None = None) -> Iterator[datetime]:
        """Successive fire times strictly after `after`."""
        fire = self.next_fire_time(after, calendar)
        while fire is not None:
            yield fire
            fire = self.next_fire_time(fire, calendar)

    def _fires_between(
        self, lower: datetime, upper: datetime, limit: int, calendar: Calendar | None = None
    ) -> list[datetime]:
        """Up to `limit` fires in (lower, upper], oldest first."""
        out: list[datetime] = []
        for fire in self.iter_fire_times(lower, calendar):
            if fire > upper or len(out) >= limit:
                break
            out.append(fire)
        return out

    def _last_fires(self, lower: datetime, upper: datetime, n: int, calendar: Calendar | None = None) -> list[datetime]:
        """The latest n fires in (lower, upper], oldest first.

        Only forward search exists, so probe windows ending at `upper` that double in width
        until one holds n fires (or reaches `lower`); if a window overshoots by more than a
        margin, bisect its start (fires are at least a second apart, so this converges).
        """
        cap = n + 64
        width = timedelta(seconds=1)
        good = upper  # a window start known to hold fewer than n fires
        while True:
            lo = max(lower, upper - width)
            found = self._fires_between(lo, upper, cap + 1, calendar)
            if len(found) <= cap and (len(found) >= n or lo == lower):
                return found[-n:]
            if len(found) > cap:
                break
            good, width = lo, width * 2
        bad = lo  # holds more than cap fires
        for _ in range(80):
            mid = bad + (good - bad) / 2
            found = self._fires_between(mid, upper, cap + 1, calendar)
            if len(found) > cap:
                bad = mid
            elif len(found) >= n:
                return found[-n:]
            else:
                good = mid
        return self._fires_between(good, upper, cap, calendar)[-n:]  # pragma: no cover - unreachable in practice

    def missed_fires(
        self,
        last_fire: datetime | None,
        now: datetime,
        since: datetime | None = None,
        calendar: Calendar | None = None,
    ) -> list[datetime]:
        """The nominal fire times to dispatch now, oldest first.

        Due fires are those in (last_fire, now].  With no `last_fire` (never fired) they start
        after `since` (e.g. the trigger's creation time) or else at `start_at` (inclusive), or
        else only fires within the misfire threshold count.  A due fire is on time when
        ``now - fire <= misfire_threshold``.  Without misfires every due fire is returned;
        with misfires: ``fire_once_now`` returns exactly one fire, the most recent due one
        (deterministic, so two beats agree on ``scheduled_for``); ``skip`` returns only the
        on-time ones; ``fire_all`` returns the most recent ``max_catchup`` due fires.
        """
        threshold = timedelta(seconds=self.misfire_threshold)
        on_time_from = now - threshold
        if last_fire is not None:
            lower = last_fire
        elif since is not None:
            lower = since
        elif self.start_at is not None:
            lower = self.start_at - _US
        else:
            lower = on_time_from - _US
        if lower >= now:
            return []
        first = self.next_fire_time(lower, calendar)
        if first is None or first > now:
            return []
        if first >= on_time_from or self.misfire_policy is MisfirePolicy.SKIP:
            return self._last_fires(max(lower, on_time_from - _US), now, self.max_catchup, calendar)
        if self.misfire_policy is MisfirePolicy.FIRE_ONCE_NOW:
            return self._last_fires(lower, now, 1, calendar)
        return self._last_fires(lower, now, self.max_catchup, calendar)

    def _window_text(self) -> str:
        parts = []
        if self.start_at is not None and not isinstance(self, IntervalSpec | CalendarIntervalSpec):
            parts.append(f"from {_iso(self.start_at)}")
        if self.end_at is not None:
            parts.append(f"until {_iso(self.end_at)}")
        return (", " + " ".join(parts)) if parts else ""


class CronSpec(_SpecBase):
    """Fires on a Quartz (or Unix) cron expression in a time zone."""

    type: Literal["cron"] = "cron"
    expression: str
    dst_policy: DstPolicy = DstPolicy.WALL_CLOCK

    @field_validator("expression", mode="before")
    @classmethod
    def _normalise(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            # new input (parse_trigger_spec passes its `now`): years up to now + 100, as Quartz;
            # a stored spec was checked when written and stays valid
            now = (info.context or {}).get("now")
            return parse_cron(value, last_year=max_year(now) if now is not None else STORED_MAX_YEAR).text
        return value

    @property
    def cron(self) -> CronExpression:
        """The compiled expression (shared, cached)."""
        return CronExpression.cached(self.expression, self.timezone, self.dst_policy)

    def _next(self, after: datetime) -> datetime | None:
        return self.cron.next_after(after)

    def describe(self) -> str:
        policy = " [quartz DST]" if self.dst_policy is DstPolicy.QUARTZ else ""
        head = f"cron {str(self.cron)!r} ({self.timezone})"
        return f"{head}: {self.cron.describe()}{policy}{self._window_text()}"


class IntervalSpec(_SpecBase):
    """Fires at start_at + k * every (k = 0, 1, ...), never drifting; repeat_count as Quartz."""

    type: Literal["interval"] = "interval"
    every: int
    repeat_count: int | None = Field(default=None, ge=0, le=2**31 - 1)  # an INTEGER column

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        return parse_duration(value)

    @model_validator(mode="after")
    def _anchored(self) -> IntervalSpec:
        if self.start_at is None:
            raise InvalidTriggerSpec(
                "start_at: is required for an interval trigger (parse_trigger_spec defaults it to now)",
                field="start_at",
            )
        return self

    def _next(self, after: datetime) -> datetime | None:
        start = self.start_at
        assert start is not None  # enforced by _anchored
        step = timedelta(seconds=self.every)
        k = 0 if after < start else (after - start) // step + 1
        if self.repeat_count is not None and k > self.repeat_count:
            return None
        return start + k * step

    def describe(self) -> str:
        assert self.start_at is not None
        text = f"every {format_duration(self.every)} from {_iso(self.start_at)}"
        if self.repeat_count is not None:
            text += f", {self.repeat_count} repeat{'s' if self.repeat_count != 1 else ''}"
        return text + self._window_text()


class OnceSpec(_SpecBase):
    """Fires once, at run_at."""

    type: Literal["once"] = "once"
    run_at: datetime

    @field_validator("run_at", mode="after")
    @classmethod
    def _floor_run_at(cls, value: datetime) -> datetime:
        return value.replace(microsecond=0)

    def _next(self, after: datetime) -> datetime | None:
        return self.run_at if self.run_at > after else None

    def describe(self) -> str:
        return f"once at {_iso(self.run_at)}" + self._window_text()


class DailyTimeIntervalSpec(_SpecBase):
    """Quartz DailyTimeIntervalTrigger: every `every` (seconds, minutes or hours, at most 24h)
    from start_time_of_day up to and including end_time_of_day, on days_of_week, in the
    trigger's time zone; repeat_count counts fires after the first."""

    type: Literal["daily_time_interval"] = "daily_time_interval"
    every: int
    start_time_of_day: str = "00:00:00"
    end_time_of_day: str = "23:59:59"
    days_of_week: tuple[str, ...] = trigger_math.DAY_NAMES
    repeat_count: int | None = Field(default=None, ge=0, le=2**31 - 1)  # an INTEGER column

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        seconds = parse_duration(value)
        if seconds > 86400:
            raise InvalidTriggerSpec(f"every: {value!r} exceeds 24 hours (Quartz's limit)", field="every")
        return seconds

    @field_validator("start_time_of_day", "end_time_of_day", mode="before")
    @classmethod
    def _time_of_day(cls, value: Any, info: Any) -> str:
        field = str(info.field_name)
        if not isinstance(value, str):
            raise InvalidTriggerSpec(f"{field}: {value!r} must be a time of day like '09:00'", field=field)
        try:
            at = parse_time_of_day(value, field)
        except InvalidInput as exc:
            raise InvalidTriggerSpec(str(exc), field=field) from None
        if at.microsecond:
            raise InvalidTriggerSpec(f"{field}: {value!r} must be whole seconds", field=field)
        return at.strftime("%H:%M:%S")

    @field_validator("days_of_week", mode="before")
    @classmethod
    def _days(cls, value: Any) -> tuple[str, ...]:
        return trigger_math.days_of_week(value)

    @model_validator(mode="after")
    def _check(self) -> DailyTimeIntervalSpec:
        if self.start_at is None:
            raise InvalidTriggerSpec(
                "start_at: is required for a daily_time_interval trigger (parse_trigger_spec defaults it to now)",
                field="start_at",
            )
        if self.end_time_of_day < self.start_time_of_day:
            raise InvalidTriggerSpec(
                f"end_time_of_day: {self.end_time_of_day} is before start_time_of_day {self.start_time_of_day}",
                field="end_time_of_day",
            )
        return self

    @property
    def rule(self) -> trigger_math.DailyRule:
        assert self.start_at is not None
        return trigger_math.daily_rule(
            self.timezone,
            trigger_math.ceil_second(self.start_at),
            self.start_time_of_day,
            self.end_time_of_day,
            self.every,
            self.days_of_week,
        )

    @property
    def final_fire(self) -> datetime | None:
        """The last fire allowed by repeat_count (None: no limit within the give-up horizon)."""
        if self.repeat_count is None:
            return None
        return trigger_math.cached_daily_nth(self.rule, self.repeat_count)

    def _next(self, after: datetime) -> datetime | None:
        fire = trigger_math.daily_next(self.rule, after)
        if fire is not None and self.repeat_count is not None:
            last = self.final_fire
            if last is not None and fire > last:
                return None
        return fire

    def describe(self) -> str:
        text = (
            f"every {format_duration(self.every)} from {self.start_time_of_day} to {self.end_time_of_day}, "
            f"{trigger_math.day_list_text(self.days_of_week)} ({self.timezone})"
        )
        if self.repeat_count is not None:
            text += f", {self.repeat_count} repeat{'s' if self.repeat_count != 1 else ''}"
        return text + self._window_text()


class CalendarIntervalSpec(_SpecBase):
    """Quartz CalendarIntervalTrigger: every `every` units (second .. year) on the wall clock of
    the trigger's time zone, counted from start_at (required: its wall-clock time is the
    anchor; a day of month the month lacks clamps to its last day, as Quartz does)."""

    type: Literal["calendar_interval"] = "calendar_interval"
    every: int = Field(ge=1, le=1_000_000)
    unit: CalendarUnit = CalendarUnit.DAY
    preserve_hour_across_dst: bool = False
    skip_day_if_hour_does_not_exist: bool = False

    @model_validator(mode="after")
    def _anchored(self) -> CalendarIntervalSpec:
        if self.start_at is None:
            raise InvalidTriggerSpec(
                "start_at: is required for a calendar_interval trigger (its wall-clock time is the anchor)",
                field="start_at",
            )
        return self

    def _next(self, after: datetime) -> datetime | None:
        assert self.start_at is not None
        return trigger_math.calendar_next(
            self.start_at,
            get_zone(self.timezone),
            self.unit,
            self.every,
            after,
            preserve_hour=self.preserve_hour_across_dst,
            skip_day_if_hour_missing=self.skip_day_if_hour_does_not_exist,
        )

    def describe(self) -> str:
        assert self.start_at is not None
        unit = self.unit.value + ("s" if self.every != 1 else "")
        local = self.start_at.astimezone(get_zone(self.timezone)).strftime("%Y-%m-%d %H:%M:%S")
        text = f"every {self.every} {unit} from {local} ({self.timezone})"
        if self.preserve_hour_across_dst:
            text += ", keeping the hour across DST"
            if self.skip_day_if_hour_does_not_exist:
                text += " (skipping days without it)"
        return text + self._window_text()


TriggerSpec = Annotated[
    CronSpec | IntervalSpec | OnceSpec | DailyTimeIntervalSpec | CalendarIntervalSpec, Field(discriminator="type")
]
AnySpec = CronSpec | IntervalSpec | OnceSpec | DailyTimeIntervalSpec | CalendarIntervalSpec
#: The one validator of trigger specs (external input through :func:`parse_trigger_spec`, stored
#: JSON through :func:`spec_from_stored`, RedBeat definitions through the scheduler's codec).
SPEC_ADAPTER: TypeAdapter[AnySpec] = TypeAdapter(TriggerSpec)
_TYPES = ", ".join(t.value for t in TriggerType)


def _one_line(exc: ValidationError) -> InvalidInput:
    """The first error of a pydantic ValidationError as one 'field: reason' line."""
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    loc = [str(p) for p in err["loc"] if p not in _TYPES.split(", ")]
    field = ".".join(loc) or "spec"
    if isinstance(cause, InvalidCronExpression) and field == "expression":
        return InvalidCronExpression(f"expression: {cause}", field="expression")
    if isinstance(cause, InvalidInput):
        return cause
    kind = err["type"]
    value = err.get("input")
    if kind == "union_tag_not_found":
        return InvalidTriggerSpec(f"type: missing; expected one of {_TYPES}", field="type")
    if kind == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        return InvalidTriggerSpec(f"type: {tag!r} is not one of {_TYPES}", field="type")
    if kind == "missing":
        return InvalidTriggerSpec(f"{field}: is required", field=field)
    if kind == "extra_forbidden":
        return InvalidTriggerSpec(f"{field}: is not a known field", field=field)
    msg = str(err["msg"]).replace("\n", " ")
    if isinstance(cause, Exception):
        msg = str(cause)
    hint = f" ({_NAIVE_HELP})" if field in ("start_at", "end_at", "run_at") else ""
    return InvalidTriggerSpec(f"{field}: {value!r} is invalid: {msg[:1].lower()}{msg[1:]}{hint}", field=field)


def parse_trigger_spec(data: Mapping[str, Any], *, now: datetime, allow_past: bool = False) -> AnySpec:
    """Validate external input into a spec: the one entry point for CLI, API and service.

    Resolves the interval default ``start_at = now``, reads naive datetimes in the spec's
    ``timezone``, stores datetimes as aware UTC floored to the whole second (``start_at``,
    ``end_at``, ``run_at``: fire times are whole seconds), rejects
    ``end_at < start_at`` and (unless ``allow_past``) a once ``run_at`` or an ``end_at`` that
    is not after ``now``.  Raises a one-line InvalidTriggerSpec / InvalidCronExpression.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput(f"now: {now.isoformat()} is naive; pass an aware datetime", field="now")
    if not isinstance(data, Mapping):
        raise InvalidTriggerSpec(f"spec: {data!r} must be a mapping with a 'type' of {_TYPES}", field="spec")
    raw = dict(data)
    if raw.get("type") in (TriggerType.INTERVAL, TriggerType.DAILY_TIME_INTERVAL) and raw.get("start_at") is None:
        raw["start_at"] = now.astimezone(UTC).replace(microsecond=0)
    try:
        spec = SPEC_ADAPTER.validate_python(raw, context={"now": now})
    except ValidationError as exc:
        raise _one_line(exc) from None
    if not allow_past:
        if isinstance(spec, OnceSpec) and spec.run_at <= now:
            raise InvalidTriggerSpec(
                f"run_at: {_iso(spec.run_at)} is not after now ({_iso(now)}); allow past times explicitly to accept it",
                field="run_at",
            )
        if spec.end_at is not None and spec.end_at <= now:
            raise InvalidTriggerSpec(f"end_at: {_iso(spec.end_at)} is not after now ({_iso(now)})", field="end_at")
    return spec


def spec_from_stored(data: Mapping[str, Any]) -> AnySpec:
    """Rebuild a trigger spec from its stored JSON (already validated when it was written)."""
    return SPEC_ADAPTER.validate_python(dict(data))
