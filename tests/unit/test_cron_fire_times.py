"""Fire times: table tests for every feature, DST nights for both policies, edge semantics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest

from woow_scheduler.cron import CronExpression
from woow_scheduler.cron.zones import Transition, transitions_in_year
from woow_scheduler.errors import InvalidInput


def fires(expr: str, start: str, n: int = 4, tz: str = "UTC", policy: str = "wall_clock") -> list[str]:
    """The first n fire times after `start`, as local ISO strings in `tz`."""
    cron = CronExpression(expr, tz, policy)
    zone = ZoneInfo(tz)
    begin = datetime.fromisoformat(start)
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=UTC)
    return [d.astimezone(zone).isoformat() for d in islice(cron.iter_after(begin), n)]


def days(expr: str, start: str, n: int = 4) -> list[str]:
    return [s[:10] for s in fires(expr, start, n)]


# -- the seed's examples and plain fields -------------------------------------------------------
Z = "+00:00"


@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("0 0 9 * * ?", "2026-01-01T00:00:00", ["2026-01-01T09:00:00" + Z, "2026-01-02T09:00:00" + Z]),
        ("0 0 8 ? * MON", "2026-01-01T00:00:00", ["2026-01-05T08:00:00" + Z, "2026-01-12T08:00:00" + Z]),
        ("0 */15 * * * ?", "2026-01-01T00:00:00", ["2026-01-01T00:15:00" + Z, "2026-01-01T00:30:00" + Z]),
        ("0 0 * ? * MON-FRI", "2026-01-02T22:30:00", ["2026-01-02T23:00:00" + Z, "2026-01-05T00:00:00" + Z]),
        ("*/20 * * * * ?", "2026-01-01T00:00:50", ["2026-01-01T00:01:00" + Z, "2026-01-01T00:01:20" + Z]),
        ("0 0 22-2 * * ?", "2026-01-01T01:30:00", ["2026-01-01T02:00:00" + Z, "2026-01-01T22:00:00" + Z]),
        ("0 0 12 ? * FRI-MON", "2026-01-01T00:00:00", ["2026-01-02T12:00:00" + Z, "2026-01-03T12:00:00" + Z]),
        ("0 0 0 1 NOV-FEB ?", "2026-02-15T00:00:00", ["2026-11-01T00:00:00" + Z, "2026-12-01T00:00:00" + Z]),
        ("0 0 0 1 1 ? 2026-2030/2", "2026-01-01", ["2028-01-01T00:00:00" + Z, "2030-01-01T00:00:00" + Z]),
    ],
)  # fmt: skip
def test_examples(expr: str, start: str, expected: list[str]) -> None:
    assert fires(expr, start, len(expected)) == expected


def test_berlin_weekday_mornings() -> None:
    expr = CronExpression("0 0 9 ? * MON-FRI", timezone="Europe/Berlin")
    assert expr.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    summer = expr.next_after(datetime(2026, 7, 4, tzinfo=UTC))  # a Saturday
    assert summer == datetime(2026, 7, 6, 7, tzinfo=UTC)
    assert summer is not None and summer.tzinfo is UTC


# -- calendar edges -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("0 0 0 29 2 ?", "2025-01-01", ["2028-02-29", "2032-02-29", "2036-02-29"]),
        ("0 0 0 L 2 ?", "2027-01-01", ["2027-02-28", "2028-02-29", "2029-02-28"]),
        ("0 0 0 31 * ?", "2026-01-31T00:00:00", ["2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31"]),
        ("0 0 0 30 * ?", "2026-01-31T00:00:00", ["2026-03-30", "2026-04-30", "2026-05-30"]),
        ("0 0 0 L * ?", "2028-01-01", ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]),
        ("0 0 0 L-2 * ?", "2026-01-01", ["2026-01-29", "2026-02-26", "2026-03-29"]),
        # L-n skips months shorter than the offset: L-30 is the 1st of 31-day months only
        ("0 0 0 L-30 * ?", "2026-01-01T00:00:00", ["2026-03-01", "2026-05-01", "2026-07-01", "2026-08-01"]),
        ("0 0 0 L-28 * ?", "2026-01-01", ["2026-01-03", "2026-03-03", "2026-04-02", "2026-05-03"]),
        # LW: last weekday; May 2026 ends on a Sunday -> Friday 29th; January 2026 on a Saturday -> 30th
        ("0 0 9 LW * ?", "2026-01-01", ["2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30"]),
        ("0 0 9 LW 5 ?", "2026-01-01", ["2026-05-29", "2027-05-31", "2028-05-31"]),
        # nW: nearest weekday, never crossing into another month
        (
            "0 0 9 1W 8 ?",
            "2026-01-01",
            ["2026-08-03", "2027-08-02", "2028-08-01"],
        ),  # Sat 1 Aug 2026 -> Mon 3rd
        ("0 0 9 15W * ?", "2026-02-01", ["2026-02-16", "2026-03-16", "2026-04-15", "2026-05-15"]),
        ("0 0 9 31W * ?", "2026-01-01", ["2026-01-30", "2026-03-31", "2026-05-29", "2026-07-31"]),
        # n#k: months without a k-th such day are skipped
        ("0 0 10 ? * 6#5", "2026-01-01", ["2026-01-30", "2026-05-29", "2026-07-31", "2026-10-30"]),
        ("0 0 10 ? * FRI#3", "2026-01-01", ["2026-01-16", "2026-02-20", "2026-03-20"]),
        ("0 0 10 ? * 2#1", "2026-01-01", ["2026-01-05", "2026-02-02", "2026-03-02"]),
        # nL: the last given weekday; 'L' alone is Saturday
        ("0 0 10 ? * 6L", "2026-01-01", ["2026-01-30", "2026-02-27", "2026-03-27"]),
        ("0 0 10 ? * 1L", "2026-01-01", ["2026-01-25", "2026-02-22", "2026-03-29"]),
        ("0 0 10 ? * L", "2026-01-01", ["2026-01-03", "2026-01-10", "2026-01-17"]),
        # year boundaries
        ("59 59 23 31 12 ?", "2026-12-31T23:59:59", ["2027-12-31", "2028-12-31"]),
        ("0 0 0 1 1 ?", "2026-12-31T23:59:59", ["2027-01-01", "2028-01-01"]),
        ("0 0 0 ? * MON 2027", "2026-12-25", ["2027-01-04", "2027-01-11"]),
    ],
)
def test_calendar_edges(expr: str, start: str, expected: list[str]) -> None:
    assert days(expr, start, len(expected)) == expected


@pytest.mark.parametrize(
    "expr", ["0 0 0 30 2 ?", "0 0 0 31 4,6,9,11 ?", "0 0 0 1 1 ? 2025", "0 0 0 ? 2 6#5 2026"]
)
@pytest.mark.parametrize("policy", ["wall_clock", "quartz"])
def test_never_fires_returns_none_quickly(expr: str, policy: str) -> None:
    began = time.perf_counter()
    cron = CronExpression(expr, "Europe/Berlin", policy)
    assert cron.next_after(datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert list(cron.iter_after(datetime(2026, 1, 1, tzinfo=UTC))) == []
    assert time.perf_counter() - began < 0.5


def test_year_field_ends() -> None:
    cron = CronExpression("0 0 0 1 1 ? 2026-2027")
    assert [d.year for d in cron.iter_after(datetime(2020, 1, 1, tzinfo=UTC))] == [2026, 2027]


# -- start semantics ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (datetime(2026, 1, 1, 8, 59, 59, 999000, tzinfo=UTC), datetime(2026, 1, 1, 9, tzinfo=UTC)),
        (datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC), datetime(2026, 1, 2, 9, tzinfo=UTC)),
        (datetime(2026, 1, 1, 9, 0, 0, 999999, tzinfo=UTC), datetime(2026, 1, 2, 9, tzinfo=UTC)),
        (datetime(2026, 1, 1, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")), datetime(2026, 1, 2, 9, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize("policy", ["wall_clock", "quartz"])
def test_start_is_excluded_and_floored(start: datetime, expected: datetime, policy: str) -> None:
    assert CronExpression("0 0 9 * * ?", "UTC", policy).next_after(start) == expected


def test_naive_start_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"after: .* is naive"):
        CronExpression("0 0 9 * * ?").next_after(datetime(2026, 1, 1))


def test_iter_after_matches_next_after_chain() -> None:
    cron = CronExpression("0 15,45 8-18 ? * MON-FRI", "America/New_York")
    t = datetime(2026, 3, 1, tzinfo=UTC)
    chain = []
    for _ in range(50):
        nxt = cron.next_after(t)
        assert nxt is not None
        chain.append(nxt)
        t = nxt
    assert list(islice(cron.iter_after(datetime(2026, 3, 1, tzinfo=UTC)), 50)) == chain


def test_matches() -> None:
    cron = CronExpression("0 0 9 ? * MON-FRI", "Europe/Berlin")
    assert cron.matches(datetime(2026, 1, 5, 8, tzinfo=UTC))
    assert not cron.matches(datetime(2026, 1, 4, 8, tzinfo=UTC))
    assert not cron.matches(datetime(2026, 1, 5, 8, 0, 0, 1, tzinfo=UTC))


# -- Unix cron ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("*/5 * * * *", "2026-01-01T00:02:00", ["2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00"]),
        ("0 9 * * 0", "2026-01-01", ["2026-01-04T09:00:00+00:00", "2026-01-11T09:00:00+00:00"]),
        ("0 9 * * 7", "2026-01-01", ["2026-01-04T09:00:00+00:00", "2026-01-11T09:00:00+00:00"]),
        ("0 9 * * 1-5", "2026-01-02T10:00", ["2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"]),
        # both day fields restricted: either may match (1st of the month OR Monday)
        ("0 9 1 * MON", "2026-01-26T10:00", ["2026-02-01T09:00:00+00:00", "2026-02-02T09:00:00+00:00"]),
        ("0 9 1 * *", "2026-01-26T10:00", ["2026-02-01T09:00:00+00:00", "2026-03-01T09:00:00+00:00"]),
    ],
)
def test_unix(expr: str, start: str, expected: list[str]) -> None:
    assert fires(expr, start, len(expected)) == expected


# -- DST: explicit nights -----------------------------------------------------------------------
def test_new_york_spring_forward_wall_clock() -> None:
    # 02:30 does not exist on 8 March 2026: it fires at 07:30 UTC (02:30 EST, i.e. 03:30 EDT)
    got = fires("0 30 2 * * ?", "2026-03-08T00:00:00-05:00", 2, "America/New_York")
    assert got == ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]
    cron = CronExpression("0 30 2 * * ?", "America/New_York")
    assert cron.next_after(datetime(2026, 3, 8, 5, tzinfo=UTC)) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_new_york_spring_forward_quartz_skips() -> None:
    got = fires("0 30 2 * * ?", "2026-03-08T00:00:00-05:00", 2, "America/New_York", "quartz")
    assert got == ["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]


def test_new_york_fall_back() -> None:
    start = "2026-11-01T00:00:00-04:00"
    assert fires("0 */30 * * * ?", start, 6, "America/New_York") == [
        "2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00",
    ]  # fmt: skip
    assert fires("0 */30 * * * ?", start, 4, "America/New_York", "quartz") == [
        "2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]  # fmt: skip
    assert fires("0 30 1 * * ?", start, 2, "America/New_York") == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    assert fires("0 30 1 * * ?", start, 2, "America/New_York", "quartz") == [
        "2026-11-01T01:30:00-05:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_two_local_times_naming_one_instant_fire_once() -> None:
    # 02:30 (nonexistent) and 03:30 EDT are the same instant on the spring-forward night
    got = fires("0 30 2,3 * * ?", "2026-03-08T00:00:00-05:00", 3, "America/New_York")
    assert got == ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-09T03:30:00-04:00"]


def test_chatham_gap_crossing_an_hour_boundary() -> None:
    # Chatham jumps 02:45 -> 03:45 (+12:45 -> +13:45): 03:50 exists; Quartz still skips it
    assert fires("0 50 3 * * ?", "2026-09-26T12:00:00Z", 2, "Pacific/Chatham") == [
        "2026-09-27T03:50:00+13:45",
        "2026-09-28T03:50:00+13:45",
    ]
    assert fires("0 50 3 * * ?", "2026-09-26T12:00:00Z", 1, "Pacific/Chatham", "quartz") == [
        "2026-09-28T03:50:00+13:45"
    ]


# -- DST: every night of 2025 and 2026 in four zones, both policies ------------------------------
NIGHTS = [
    (tz, tr)
    for tz in ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham")
    for year in (2025, 2026)
    for tr in transitions_in_year(ZoneInfo(tz), year)
]


def _night_id(night: tuple[str, Transition]) -> str:
    tz, tr = night
    return f"{tz}@{datetime.fromtimestamp(tr.at, UTC):%Y-%m-%d}"


def test_sixteen_nights() -> None:
    assert len(NIGHTS) == 16


def _wall(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


@pytest.mark.parametrize("night", NIGHTS, ids=_night_id)
def test_every_15_minutes_stays_every_15_minutes(night: tuple[str, Transition]) -> None:
    tz, tr = night
    cron = CronExpression("0 */15 * * * ?", tz)
    start = datetime.fromtimestamp(tr.at - 4 * 3600, UTC)
    got = list(islice(cron.iter_after(start), 32))
    assert all((b - a) == timedelta(minutes=15) for a, b in pairwise(got))


@pytest.mark.parametrize("night", NIGHTS, ids=_night_id)
@pytest.mark.parametrize("policy", ["wall_clock", "quartz"])
def test_daily_time_inside_the_change(night: tuple[str, Transition], policy: str) -> None:
    """A daily job at a local time that the change skips or repeats."""
    tz, tr = night
    shift = tr.after - tr.before
    # a whole-minute local time in the middle of the skipped / repeated stretch
    # gap: local times [at+before, at+after) do not exist; overlap: [at+after, at+before) repeat
    local = _wall(tr.at + tr.before + shift // 2) if shift > 0 else _wall(tr.at + tr.after - shift // 2)
    local = local.replace(second=0)
    cron = CronExpression(f"0 {local.minute} {local.hour} * * ?", tz, policy)
    start = datetime.fromtimestamp(tr.at - 3 * 3600, UTC)
    first, second = islice(cron.iter_after(start), 2)
    zone = ZoneInfo(tz)
    fold0 = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    fold1 = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if shift > 0 and policy == "wall_clock":
        assert first == fold0  # fires at the instant the time names under the old offset
    elif shift > 0:
        assert first.astimezone(zone).date() > local.date()  # Quartz skips it
    elif policy == "wall_clock":
        assert first == min(fold0, fold1)  # first occurrence only
        assert second.astimezone(zone).date() > local.date()
    else:
        assert first == max(fold0, fold1)  # Quartz: the later (standard-time) instant
        assert second.astimezone(zone).date() > local.date()


@pytest.mark.parametrize("night", NIGHTS, ids=_night_id)
@pytest.mark.parametrize("expr", ["0 */15 * * * ?", "0 0 * * * ?", "0 30 1-3 * * ?", "0 5,50 * * * ?"])
def test_wall_clock_strictly_increasing_across_change(night: tuple[str, Transition], expr: str) -> None:
    tz, tr = night
    cron = CronExpression(expr, tz)
    t = datetime.fromtimestamp(tr.at - 6 * 3600, UTC)
    seen = []
    for _ in range(40):
        nxt = cron.next_after(t)
        assert nxt is not None and nxt > t
        seen.append(nxt)
        t = nxt
    assert len(set(seen)) == len(seen)
