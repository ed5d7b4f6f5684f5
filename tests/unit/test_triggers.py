"""Trigger specs: parsing, JSON round trips, fire math and misfire decisions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from woow_scheduler.errors import InvalidCronExpression, InvalidTriggerSpec
from woow_scheduler.triggers import (
    CronSpec,
    DstPolicy,
    IntervalSpec,
    MisfirePolicy,
    OnceSpec,
    TriggerSpec,
    TriggerType,
    format_duration,
    parse_duration,
    parse_trigger_spec,
    spec_from_stored,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (300, 300),
        ("300", 300),
        ("5m", 300),
        ("1h30m", 5400),
        ("1d", 86400),
        ("2w", 1209600),
        (" 1h 30m ", 5400),
        ("90s", 90),
        (60.0, 60),
        ("1D", 86400),
    ],
)
def test_parse_duration(text: str | int | float, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [0, -5, "0s", "", "5x", "m", True, 1.5, "1h30", "-1m"])
def test_parse_duration_rejects(text: Any) -> None:
    with pytest.raises(InvalidTriggerSpec, match=r"^every: .* must be a positive duration like 30, '5m'"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (300, 5400, 86400, 90061)] == ["5m", "1h30m", "1d", "1d1h1m1s"]


def test_enums() -> None:
    assert [t.value for t in TriggerType] == ["cron", "interval", "once", "daily_time_interval", "calendar_interval"]
    assert [p.value for p in MisfirePolicy] == ["fire_once_now", "skip", "fire_all"]
    assert [p.value for p in DstPolicy] == ["wall_clock", "quartz"]


# -- parsing ---------------------------------------------------------------------------------------
def test_cron_spec_normalises_and_round_trips() -> None:
    spec = parse_trigger_spec(
        {"type": "cron", "expression": "0  0 9 ? * mon-fri", "timezone": "Europe/Berlin"}, now=NOW
    )
    assert isinstance(spec, CronSpec)
    assert spec.expression == "0 0 9 ? * MON-FRI"
    stored = spec.model_dump(mode="json")
    assert stored["type"] == "cron"
    assert parse_trigger_spec(stored, now=NOW, allow_past=True) == spec
    assert TypeAdapter(TriggerSpec).validate_python(stored) == spec
    assert TypeAdapter(TriggerSpec).validate_json(spec.model_dump_json()) == spec
    assert spec.describe() == "cron '0 0 9 ? * MON-FRI' (Europe/Berlin): at 09:00:00, Monday through Friday"


def test_unix_cron_spec() -> None:
    spec = parse_trigger_spec({"type": "cron", "expression": "*/5 * * * *"}, now=NOW)
    assert isinstance(spec, CronSpec)
    assert spec.expression == "*/5 * * * *"
    assert "(unix)" in spec.describe()
    assert spec.next_fire_time(NOW) == utc(2026, 1, 1, 12, 5)


def test_interval_defaults_start_to_now_floored() -> None:
    spec = parse_trigger_spec({"type": "interval", "every": "5m", "repeat_count": 3}, now=NOW)
    assert isinstance(spec, IntervalSpec)
    assert spec.start_at == utc(2026, 1, 1, 12)
    assert spec.every == 300
    assert spec.describe() == "every 5m from 2026-01-01T12:00:00Z, 3 repeats"
    assert TypeAdapter(TriggerSpec).validate_python(spec.model_dump(mode="json")) == spec


def test_naive_datetimes_are_read_in_the_spec_timezone() -> None:
    spec = parse_trigger_spec(
        {"type": "once", "run_at": "2026-07-01T09:00", "timezone": "Europe/Berlin"}, now=NOW
    )
    assert isinstance(spec, OnceSpec)
    assert spec.run_at == utc(2026, 7, 1, 7)
    assert spec.run_at.tzinfo is UTC
    assert spec.describe() == "once at 2026-07-01T07:00:00Z"
    spec2 = parse_trigger_spec(
        {"type": "once", "run_at": datetime(2026, 7, 1, 9), "timezone": "America/New_York"}, now=NOW
    )
    assert spec2.run_at == utc(2026, 7, 1, 13)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            {"type": "interval", "every": "0s"},
            InvalidTriggerSpec,
            "every: '0s' must be a positive duration like 30, '5m', '1h30m', '1d'",
        ),
        (
            {"type": "cron", "expression": "0 0 9 ? * 8"},
            InvalidCronExpression,
            "expression: day-of-week: '8' is out of range 1-7 (1=SUN) or SUN-SAT",
        ),
        ({"type": "bogus"}, InvalidTriggerSpec, "type: 'bogus' is not one of cron, interval, once"),
        ({"every": 5}, InvalidTriggerSpec, "type: missing; expected one of cron, interval, once"),
        ({"type": "cron"}, InvalidTriggerSpec, "expression: is required"),
        ({"type": "once"}, InvalidTriggerSpec, "run_at: is required"),
        (
            {"type": "cron", "expression": "* * * * *", "timezone": "Mars/Base"},
            InvalidTriggerSpec,
            "timezone: 'Mars/Base' is not a known IANA time zone name",
        ),
        (
            {"type": "cron", "expression": "* * * * *", "misfire_threshold": 0},
            InvalidTriggerSpec,
            "misfire_threshold: 0 is invalid",
        ),
        (
            {"type": "cron", "expression": "* * * * *", "max_catchup": 0},
            InvalidTriggerSpec,
            "max_catchup: 0 is invalid",
        ),
        (  # issue 13 item 8: a catch-up is bounded, so one entry never holds beat for long
            {"type": "cron", "expression": "* * * * *", "max_catchup": 100_001},
            InvalidTriggerSpec,
            "max_catchup: 100001 is invalid",
        ),
        (
            {"type": "cron", "expression": "* * * * *", "misfire_policy": "later"},
            InvalidTriggerSpec,
            "misfire_policy: 'later' is invalid",
        ),
        (
            {"type": "cron", "expression": "* * * * *", "dst_policy": "x"},
            InvalidTriggerSpec,
            "dst_policy: 'x'",
        ),
        (
            {"type": "interval", "every": 5, "repeat_count": -1},
            InvalidTriggerSpec,
            "repeat_count: -1 is invalid",
        ),
        (
            {"type": "interval", "every": 5, "start_at": "2026-02-01T00:00Z", "end_at": "2026-01-31T00:00Z"},
            InvalidTriggerSpec,
            "end_at: 2026-01-31T00:00:00Z is before start_at 2026-02-01T00:00:00Z",
        ),
        (
            {"type": "once", "run_at": "2025-12-31T00:00:00Z"},
            InvalidTriggerSpec,
            "run_at: 2025-12-31T00:00:00Z is not after now",
        ),
        (
            {"type": "cron", "expression": "* * * * *", "end_at": "2025-12-31T00:00:00Z"},
            InvalidTriggerSpec,
            "end_at: 2025-12-31T00:00:00Z is not after now",
        ),
        (
            {"type": "once", "run_at": "tomorrow"},
            InvalidTriggerSpec,
            "run_at: 'tomorrow' is not an ISO 8601 datetime",
        ),
        (
            {"type": "cron", "expression": "* * * * *", "colour": "red"},
            InvalidTriggerSpec,
            "colour: is not a known field",
        ),
    ],
)
def test_rejections_are_one_line(data: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_trigger_spec(data, now=NOW)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_allow_past() -> None:
    spec = parse_trigger_spec({"type": "once", "run_at": "2025-12-31T00:00:00Z"}, now=NOW, allow_past=True)
    assert spec.next_fire_time(utc(2025, 1, 1)) == utc(2025, 12, 31)


def test_not_a_mapping_and_naive_now() -> None:
    with pytest.raises(InvalidTriggerSpec, match="spec: "):
        parse_trigger_spec([1, 2], now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"now: .* is naive"):
        parse_trigger_spec({"type": "once", "run_at": "2030-01-01T00:00Z"}, now=datetime(2026, 1, 1))


# -- fire math -------------------------------------------------------------------------------------
def test_interval_is_anchored_and_bounded() -> None:
    spec = parse_trigger_spec(
        {"type": "interval", "every": 90, "start_at": "2026-01-01T00:00:00Z", "repeat_count": 2},
        now=NOW,
        allow_past=True,
    )
    assert list(spec.iter_fire_times(utc(2025, 1, 1))) == [
        utc(2026, 1, 1),
        utc(2026, 1, 1, 0, 1, 30),
        utc(2026, 1, 1, 0, 3),
    ]
    assert spec.next_fire_time(utc(2026, 1, 1, 0, 1, 29)) == utc(2026, 1, 1, 0, 1, 30)
    assert spec.next_fire_time(utc(2026, 1, 1, 0, 1, 30)) == utc(2026, 1, 1, 0, 3)
    forever = spec.model_copy(update={"repeat_count": None})
    k = 1_000_000
    assert forever.next_fire_time(utc(2026, 1, 1) + timedelta(seconds=90 * k - 1)) == utc(2026, 1, 1) + timedelta(
        seconds=90 * k
    )


def test_cron_window_inclusive() -> None:
    spec = parse_trigger_spec(
        {
            "type": "cron",
            "expression": "0 0 9 * * ?",
            "start_at": "2026-01-03T09:00:00Z",
            "end_at": "2026-01-05T09:00:00Z",
        },
        now=NOW,
    )
    assert list(spec.iter_fire_times(utc(2026, 1, 1))) == [
        utc(2026, 1, 3, 9),
        utc(2026, 1, 4, 9),
        utc(2026, 1, 5, 9),
    ]


def test_once() -> None:
    spec = parse_trigger_spec({"type": "once", "run_at": "2026-01-02T00:00:00Z"}, now=NOW)
    assert spec.next_fire_time(NOW) == utc(2026, 1, 2)
    assert spec.next_fire_time(utc(2026, 1, 2)) is None


def _every_minute(policy: MisfirePolicy, **extra: Any) -> CronSpec:
    spec = parse_trigger_spec(
        {"type": "cron", "expression": "0 * * * * ?", "misfire_policy": policy.value, **extra}, now=NOW
    )
    assert isinstance(spec, CronSpec)
    return spec


@pytest.mark.parametrize("policy", list(MisfirePolicy))
def test_on_time_fires_are_dispatched_under_every_policy(policy: MisfirePolicy) -> None:
    spec = _every_minute(policy)
    now = utc(2026, 1, 1, 12, 0, 5)
    assert spec.missed_fires(utc(2026, 1, 1, 11, 59), now) == [utc(2026, 1, 1, 12)]
    assert spec.missed_fires(utc(2026, 1, 1, 12), now) == []


def test_misfire_policies_after_an_outage() -> None:
    last, now = utc(2026, 1, 1, 10), utc(2026, 1, 1, 12, 0, 30)
    assert _every_minute(MisfirePolicy.FIRE_ONCE_NOW).missed_fires(last, now) == [utc(2026, 1, 1, 12)]
    assert _every_minute(MisfirePolicy.SKIP).missed_fires(last, now) == [utc(2026, 1, 1, 12)]
    strict = _every_minute(MisfirePolicy.SKIP, misfire_threshold=30)
    assert strict.missed_fires(last, utc(2026, 1, 1, 12, 0, 45)) == []
    got = _every_minute(MisfirePolicy.FIRE_ALL, max_catchup=5).missed_fires(last, now)
    assert got == [utc(2026, 1, 1, 11, 56) + timedelta(minutes=i) for i in range(5)]
    got = _every_minute(MisfirePolicy.FIRE_ALL).missed_fires(last, now)
    assert len(got) == 100 and got[-1] == utc(2026, 1, 1, 12) and got == sorted(got)


def test_fire_once_now_picks_most_recent_missed() -> None:
    spec = parse_trigger_spec({"type": "cron", "expression": "0 0 9 * * ?"}, now=NOW)
    assert spec.missed_fires(utc(2025, 12, 1, 9), NOW) == [utc(2026, 1, 1, 9)]
    every_second = parse_trigger_spec(
        {"type": "cron", "expression": "* * * * * ?", "misfire_policy": "fire_all", "max_catchup": 3}, now=NOW
    )
    assert every_second.missed_fires(utc(2025, 1, 1), NOW) == [
        utc(2026, 1, 1, 11, 59, 58),
        utc(2026, 1, 1, 11, 59, 59),
        utc(2026, 1, 1, 12),
    ]


def test_never_fired_uses_since_or_start() -> None:
    spec = _every_minute(MisfirePolicy.FIRE_ALL, start_at="2026-01-01T11:58:00Z")
    now = utc(2026, 1, 1, 12, 0, 1)
    assert spec.missed_fires(None, now) == [
        utc(2026, 1, 1, 11, 58),
        utc(2026, 1, 1, 11, 59),
        utc(2026, 1, 1, 12),
    ]
    assert spec.missed_fires(None, now, since=utc(2026, 1, 1, 11, 59)) == [utc(2026, 1, 1, 12)]
    bare = _every_minute(MisfirePolicy.FIRE_ALL)
    assert bare.missed_fires(None, now) == [utc(2026, 1, 1, 12)]


def test_interval_misfires() -> None:
    spec = parse_trigger_spec(
        {"type": "interval", "every": "1h", "start_at": "2026-01-01T00:00:00Z", "misfire_policy": "fire_all"},
        now=NOW,
        allow_past=True,
    )
    assert spec.missed_fires(utc(2026, 1, 1, 8), NOW) == [utc(2026, 1, 1, h) for h in (9, 10, 11, 12)]
    assert spec.model_copy(update={"misfire_policy": MisfirePolicy.FIRE_ONCE_NOW}).missed_fires(
        utc(2026, 1, 1, 8), NOW
    ) == [utc(2026, 1, 1, 12)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", "2026-12-05T07:30:02+00:00"),
        ("+2m", "2026-12-05T07:32:02+00:00"),
        ("+30s", "2026-12-05T07:30:32+00:00"),
    ],
)
def test_cli_relative_times_are_whole_seconds(text: str, expected: str) -> None:
    """`trigger add --at +2m` stored microseconds, breaking the whole-seconds rule of fire times;
    'now' rounds up so it is never in the past."""
    from woow_scheduler.cli.trigger import parse_when

    now = datetime(2026, 12, 5, 7, 30, 1, 980212, tzinfo=UTC)
    assert parse_when(text, "at", now=now) == expected
    assert parse_when(text, "at", now=now.replace(microsecond=0) + timedelta(seconds=1)) == expected


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "interval", "every": 3, "start_at": "2026-02-01T00:00:00.500+01:00", "end_at": 1801000000.75},
        {
            "type": "cron",
            "expression": "* * * * * ?",
            "start_at": "2026-02-01T00:00:00.5",
            "end_at": "2026-03-01T00:00:00.9Z",
        },
        {"type": "once", "run_at": "2026-02-01T00:00:00.999999", "end_at": "2026-03-01T00:00:00.1Z"},
        {"type": "daily_time_interval", "every": 60, "start_at": "2026-02-01T00:00:00.5Z", "end_at": 1801000000.5},
        {"type": "calendar_interval", "every": 1, "unit": "hour", "start_at": "2026-02-01T00:00:00.5Z"},
    ],
    ids=lambda s: s["type"],
)
def test_fire_time_bounds_are_whole_seconds(spec: dict[str, Any]) -> None:
    """Issue 13 item 6: start_at, end_at and run_at are floored at validation, for input and for
    stored rows written before the floor (spec_from_stored), so every fire is a whole second."""
    for parsed in (parse_trigger_spec(spec, now=NOW), spec_from_stored(spec)):
        bounds = [parsed.start_at, parsed.end_at, getattr(parsed, "run_at", None)]
        assert [b.microsecond for b in bounds if b is not None] == [0] * sum(b is not None for b in bounds)
        fires = list(itertools.islice(parsed.iter_fire_times(NOW), 3))
        assert fires and all(f.microsecond == 0 for f in fires)
        if parsed.start_at is not None:
            assert fires[0] == parsed.start_at  # the floored start is the first fire of each type


def test_a_stored_window_inside_one_second_stays_readable() -> None:
    """A row stored before the floor with start_at .2 and end_at .7 of one second: both floor to
    the same second, a one-second window (both ends inclusive), not an unreadable spec."""
    stored = {
        "type": "cron",
        "expression": "* * * * * ?",
        "start_at": "2026-02-01T00:00:00.200000Z",
        "end_at": "2026-02-01T00:00:00.700000Z",
    }
    spec = spec_from_stored(stored)
    assert spec.start_at == spec.end_at == utc(2026, 2, 1)
    assert list(spec.iter_fire_times(utc(2026, 1, 1))) == [utc(2026, 2, 1)]
