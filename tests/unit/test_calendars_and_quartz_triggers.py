"""Calendars, daily_time_interval and calendar_interval: examples, errors and properties."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from woow_scheduler.calendars import calendar_json, parse_calendar
from woow_scheduler.errors import InvalidCalendar, InvalidTriggerSpec
from woow_scheduler.triggers import jitter_offset, parse_trigger_spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _fires(spec: dict[str, Any], n: int, after: datetime = NOW, calendar: dict[str, Any] | None = None) -> list[str]:
    parsed = parse_trigger_spec(spec, now=NOW, allow_past=True)
    cal = parse_calendar(calendar) if calendar else None
    return [f.isoformat() for f in itertools.islice(parsed.iter_fire_times(after, cal), n)]


# -- calendar_interval -----------------------------------------------------------------------
def test_month_from_the_31st_clamps_as_quartz_and_keeps_the_hour_across_dst() -> None:
    spec = {"type": "calendar_interval", "every": 1, "unit": "month", "timezone": "America/New_York",
            "start_at": "2026-01-31T02:00:00", "preserve_hour_across_dst": True}  # fmt: skip
    # Quartz's Calendar.add pins Feb 31 to the 28th and counts on from there (02:00 local: EST, then EDT)
    assert _fires(spec, 4) == [
        "2026-01-31T07:00:00+00:00",
        "2026-02-28T07:00:00+00:00",
        "2026-03-28T06:00:00+00:00",
        "2026-04-28T06:00:00+00:00",
    ]


def test_yearly_from_a_leap_day() -> None:
    spec = {"type": "calendar_interval", "every": 1, "unit": "year", "start_at": "2024-02-29T12:00:00Z"}
    assert _fires(spec, 3, datetime(2024, 1, 1, tzinfo=UTC)) == [
        "2024-02-29T12:00:00+00:00",
        "2025-02-28T12:00:00+00:00",
        "2026-02-28T12:00:00+00:00",
    ]


def test_daily_at_a_time_the_spring_forward_day_lacks() -> None:
    base = {"type": "calendar_interval", "every": 1, "unit": "day", "timezone": "America/New_York",
            "start_at": "2026-03-07T02:30:00"}  # fmt: skip
    after = datetime(2026, 3, 7, 8, tzinfo=UTC)
    # Quartz's day arithmetic lands 02:30 of March 8 (no such time) on 01:30 EST, and stays at 01:30
    assert _fires(base, 2, after) == ["2026-03-08T06:30:00+00:00", "2026-03-09T05:30:00+00:00"]
    keep = base | {"preserve_hour_across_dst": True}
    assert _fires(keep, 2, after) == ["2026-03-08T07:30:00+00:00", "2026-03-09T06:30:00+00:00"]
    skip = keep | {"skip_day_if_hour_does_not_exist": True}
    assert _fires(skip, 2, after) == ["2026-03-09T06:30:00+00:00", "2026-03-10T06:30:00+00:00"]


def test_calendar_interval_requires_its_anchor() -> None:
    with pytest.raises(InvalidTriggerSpec, match=r"^start_at: is required for a calendar_interval trigger"):
        parse_trigger_spec({"type": "calendar_interval", "every": 1, "unit": "week"}, now=NOW)


# -- daily_time_interval ---------------------------------------------------------------------
WEEKDAYS = {"type": "daily_time_interval", "every": "15m", "start_time_of_day": "09:00",
            "end_time_of_day": "17:00", "days_of_week": ["MON", "TUE", "WED", "THU", "FRI"],
            "timezone": "Europe/Berlin", "start_at": "2026-03-06T00:00:00"}  # fmt: skip


def test_every_15_minutes_between_9_and_17_on_weekdays() -> None:
    after = datetime(2026, 3, 6, 15, 40, tzinfo=UTC)  # Friday 16:40 Berlin
    assert _fires(WEEKDAYS, 4, after) == [
        "2026-03-06T15:45:00+00:00",
        "2026-03-06T16:00:00+00:00",  # 17:00 itself fires: the end time is inclusive
        "2026-03-09T08:00:00+00:00",  # Monday 09:00
        "2026-03-09T08:15:00+00:00",
    ]
    spec = parse_trigger_spec(WEEKDAYS, now=NOW)
    assert spec.describe() == (
        "every 15m from 09:00:00 to 17:00:00, MON-FRI (Europe/Berlin), from 2026-03-05T23:00:00Z"
    )


def test_day_ranges_and_repeat_count() -> None:
    spec = WEEKDAYS | {"days_of_week": ["MON-FRI"], "every": "4h", "repeat_count": 3}
    # 09:00, 13:00, 17:00 on Friday, then Monday 09:00, and no more: 3 repeats after the first
    assert _fires(spec, 10, datetime(2026, 3, 5, 23, tzinfo=UTC)) == [
        "2026-03-06T08:00:00+00:00",
        "2026-03-06T12:00:00+00:00",
        "2026-03-06T16:00:00+00:00",
        "2026-03-09T08:00:00+00:00",
    ]


def test_daily_interval_crossing_the_spring_forward_change() -> None:
    spec = {"type": "daily_time_interval", "every": "1h", "start_time_of_day": "00:30",
            "end_time_of_day": "04:00", "timezone": "Europe/Berlin", "start_at": "2026-03-29T00:00:00"}  # fmt: skip
    # steps are absolute hours from 00:30 local (CET); 02:30 does not exist, 03:30 CEST is 01:30Z
    assert _fires(spec, 4, datetime(2026, 3, 28, tzinfo=UTC)) == [
        "2026-03-28T23:30:00+00:00",
        "2026-03-29T00:30:00+00:00",
        "2026-03-29T01:30:00+00:00",
        "2026-03-29T22:30:00+00:00",
    ]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"every": "2d"}, "every: '2d' exceeds 24 hours (Quartz's limit)"),
        ({"every": 0}, "every: 0 must be a positive duration"),
        ({"start_time_of_day": "9h"}, "start_time_of_day: '9h' is not a time of day like '09:00'"),
        ({"end_time_of_day": "08:00"}, "end_time_of_day: 08:00:00 is before start_time_of_day 09:00:00"),
        ({"days_of_week": ["MON", "FUNDAY"]}, "days_of_week: 'FUNDAY' is not a day of the week (MON..SUN)"),
        ({"days_of_week": []}, "days_of_week: [] must be a non-empty list of days"),
        ({"repeat_count": -1}, "repeat_count: -1 is invalid"),
        ({"jitter": "soon"}, "jitter: 'soon' must be a positive duration"),
        ({"priority": 10**6}, "priority: 1000000 is invalid"),
        ({"colour": "red"}, "colour: is not a known field"),
    ],
)
def test_daily_errors_name_the_field(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTriggerSpec) as info:
        parse_trigger_spec(WEEKDAYS | patch, now=NOW)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


# -- calendars -------------------------------------------------------------------------------
def test_holiday_calendar_skips_the_day_and_fires_the_next() -> None:
    cron = {"type": "cron", "expression": "0 0 9 * * ?", "timezone": "Europe/Berlin"}
    holiday = {"type": "holiday", "dates": ["2026-12-25"], "timezone": "Europe/Berlin"}
    assert _fires(cron, 2, datetime(2026, 12, 24, 9, tzinfo=UTC), holiday) == [
        "2026-12-26T08:00:00+00:00",
        "2026-12-27T08:00:00+00:00",
    ]


def test_chained_calendars_and_the_issue_examples() -> None:
    cal = parse_calendar({"type": "annual", "days": ["12-25", "01-01"],
                          "base": {"type": "weekly", "exclude": ["SAT", "SUN"]}})  # fmt: skip
    assert not cal.is_time_included(datetime(2027, 1, 1, 12, tzinfo=UTC))  # New Year
    assert not cal.is_time_included(datetime(2027, 1, 2, 12, tzinfo=UTC))  # a Saturday
    assert cal.next_included_time(datetime(2027, 1, 1, 12, tzinfo=UTC)) == datetime(2027, 1, 4, tzinfo=UTC)
    monthly = parse_calendar({"type": "monthly", "exclude": [1, 15]})
    assert monthly.next_included_time(datetime(2026, 5, 15, 3, tzinfo=UTC)) == datetime(2026, 5, 16, tzinfo=UTC)
    daily = parse_calendar({"type": "daily", "range": "08:00-17:00", "invert": False})
    assert daily.is_time_included(datetime(2026, 5, 5, 0, 0, tzinfo=UTC))  # midnight kept (Quartz drops it)
    assert not daily.is_time_included(datetime(2026, 5, 5, 17, 0, tzinfo=UTC))  # both ends inclusive
    assert daily.next_included_time(datetime(2026, 5, 5, 9, tzinfo=UTC)) == datetime(
        2026, 5, 5, 17, 0, 0, 1000, tzinfo=UTC
    )
    night = parse_calendar({"type": "cron", "expression": "* * 0-7,18-23 ? * *"})
    assert night.next_included_time(datetime(2026, 5, 5, 19, tzinfo=UTC)) == datetime(2026, 5, 6, 8, tzinfo=UTC)
    assert calendar_json(parse_calendar(calendar_json(cal))) == calendar_json(cal)


def test_a_calendar_that_excludes_everything_ends_the_trigger() -> None:
    everything = {"type": "weekly", "exclude": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]}
    assert _fires({"type": "cron", "expression": "0 * * * * ?"}, 3, NOW, everything) == []
    assert parse_calendar(everything).next_included_time(NOW) is None
    # every fire of the trigger excluded (not every time): ends too, after a bounded search
    assert (
        _fires({"type": "cron", "expression": "0 0 12 * * ?"}, 1, NOW, {"type": "daily", "range": "11:00-13:00"}) == []
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "lunar"}, "type: 'lunar' is not one of holiday, annual, weekly, monthly, daily, cron"),
        ({"dates": []}, "type: missing; expected one of"),
        ({"type": "holiday", "dates": ["2026-02-30"]}, "dates: '2026-02-30' is not a date like '2026-12-25'"),
        ({"type": "annual", "days": ["13-01"]}, "days: '13-01' is not a day of the year like '12-25'"),
        ({"type": "weekly", "exclude": ["FUNDAY"]}, "exclude: 'FUNDAY' is not a day of the week (MON..SUN)"),
        ({"type": "monthly", "exclude": [32]}, "exclude: 32 is out of range 1-31"),
        ({"type": "daily", "range": "17:00-08:00"}, "range: '17:00-08:00' must start before it ends"),
        ({"type": "daily", "range": "noon"}, "range: 'noon' must be 'HH:MM-HH:MM'"),
        ({"type": "cron", "expression": "0 0 25 * * ?"}, "expression: hour: '25' is out of range 0-23"),
        ({"type": "weekly", "timezone": "Mars/Base"}, "timezone: 'Mars/Base' is not a known IANA time zone"),
        ({"type": "weekly", "base": {"type": "monthly", "exclude": "1"}}, "base.exclude: '1' must be a list"),
        ({"type": "weekly", "base": {"exclude": []}}, "base.type: missing"),
        ({"type": "weekly", "extra": 1}, "extra: is not a known field"),
        ("holiday", "calendar: 'holiday' must be a mapping"),
    ],
)
def test_calendar_errors_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(InvalidCalendar) as info:
        parse_calendar(data)
    assert str(info.value).startswith(message), str(info.value)


def test_calendar_chain_depth_is_bounded() -> None:
    data: dict[str, Any] = {"type": "weekly"}
    for _ in range(10):
        data = {"type": "weekly", "base": data}
    with pytest.raises(InvalidCalendar, match=r"^base: calendars may be chained at most 8 deep"):
        parse_calendar(data)


# -- jitter ----------------------------------------------------------------------------------
def test_jitter_is_a_pure_function_in_range() -> None:
    at = datetime(2026, 1, 1, 9, tzinfo=UTC)
    offsets = {jitter_offset(f"t{i}", at, 30) for i in range(200)}
    assert all(timedelta(0) <= o < timedelta(seconds=30) for o in offsets)
    assert len(offsets) > 150  # spread, not one value
    assert jitter_offset("t1", at, 30) == jitter_offset("t1", at.astimezone(), 30)  # the instant, not its zone
    assert jitter_offset("t1", at, 0) == timedelta(0)


# -- properties ------------------------------------------------------------------------------
_ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"])
_CALENDARS = st.sampled_from(
    [
        None,
        {"type": "weekly", "exclude": ["SAT", "SUN"]},
        {"type": "daily", "range": "08:00-17:00", "timezone": "Europe/Berlin"},
        {"type": "daily", "range": "09:00-12:00", "invert": True, "timezone": "America/New_York"},
        {"type": "monthly", "exclude": [1, 2, 3, 31]},
        {"type": "cron", "expression": "* * 0-7,18-23 ? * *", "base": {"type": "holiday", "dates": ["2026-03-29"]}},
    ]
)
_STARTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@st.composite
def _specs(draw: st.DrawFn) -> dict[str, Any]:
    zone = draw(_ZONES)
    start = draw(_STARTS).replace(microsecond=0).isoformat()
    if draw(st.booleans()):
        a = draw(st.integers(0, 23 * 3600))
        b = draw(st.integers(a, 86399))
        days = draw(st.lists(st.sampled_from(["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]), min_size=1))
        return {"type": "daily_time_interval", "every": draw(st.integers(1, 86400)), "timezone": zone,
                "start_time_of_day": f"{a // 3600:02d}:{a // 60 % 60:02d}:{a % 60:02d}",
                "end_time_of_day": f"{b // 3600:02d}:{b // 60 % 60:02d}:{b % 60:02d}",
                "days_of_week": days, "start_at": start,
                "repeat_count": draw(st.none() | st.integers(0, 50))}  # fmt: skip
    unit = draw(st.sampled_from(["minute", "hour", "day", "week", "month", "year"]))
    return {"type": "calendar_interval", "timezone": zone, "start_at": start,
            "every": draw(st.integers(1, 40)), "unit": unit, "preserve_hour_across_dst": draw(st.booleans()),
            "skip_day_if_hour_does_not_exist": draw(st.booleans())}  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(spec=_specs(), calendar=_CALENDARS, after=_STARTS)
def test_fires_increase_are_included_and_inside_the_window(
    spec: dict[str, Any], calendar: dict[str, Any] | None, after: datetime
) -> None:
    parsed = parse_trigger_spec(spec, now=NOW, allow_past=True)
    cal = parse_calendar(calendar) if calendar else None
    prev = after
    fires = list(itertools.islice(parsed.iter_fire_times(after, cal), 8))
    for fire in fires:
        assert fire > prev
        assert fire.tzinfo is UTC or fire.utcoffset() == timedelta(0)
        assert parsed.start_at is None or fire >= parsed.start_at.replace(microsecond=0)
        assert cal is None or cal.is_time_included(fire)
        prev = fire
    if spec["type"] == "daily_time_interval":
        zone = parsed.timezone
        for fire in fires:
            local = fire.astimezone(ZoneInfo(zone))
            assert local.strftime("%a").upper()[:3] in parsed.days_of_week  # type: ignore[union-attr]
        if spec["repeat_count"] is not None and cal is None:
            every = list(itertools.islice(parsed.iter_fire_times(parsed.start_at - timedelta(seconds=1)), 60))  # type: ignore[operator]
            assert len(every) <= spec["repeat_count"] + 1
