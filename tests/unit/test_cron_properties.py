"""Property tests over generated Quartz expressions (hypothesis)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import islice

from hypothesis import example, given, settings
from hypothesis import strategies as st

from woow_scheduler.cron import CronExpression

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"]


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    value = st.integers(lo, hi)
    single = value.map(str)
    rng = st.tuples(value, value).map(lambda ab: f"{ab[0]}-{ab[1]}")
    step = st.tuples(value, st.integers(1, max(1, hi - lo))).map(lambda ab: f"{ab[0]}/{ab[1]}")
    star_step = st.integers(1, max(1, hi - lo)).map(lambda n: f"*/{n}")
    lst = st.lists(value, min_size=1, max_size=4).map(lambda vs: ",".join(map(str, vs)))
    return st.one_of(st.just("*"), single, rng, step, star_step, lst)


_dom_special = st.one_of(
    st.just("L"),
    st.just("LW"),
    st.integers(0, 10).map(lambda n: f"L-{n}"),
    st.integers(1, 31).map(lambda n: f"{n}W"),
)
_dow_special = st.one_of(
    st.just("L"),
    st.integers(1, 7).map(lambda n: f"{n}L"),
    st.tuples(st.integers(1, 7), st.integers(1, 5)).map(lambda ab: f"{ab[0]}#{ab[1]}"),
)
_days = st.one_of(
    st.tuples(st.one_of(_field(1, 31), _dom_special), st.just("?")),
    st.tuples(st.just("?"), st.one_of(_field(1, 7), _dow_special)),
)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    sec = draw(st.one_of(st.just("0"), _field(0, 59)))
    minute = draw(_field(0, 59))
    hour = draw(_field(0, 23))
    dom, dow = draw(_days)
    month = draw(_field(1, 12))
    return f"{sec} {minute} {hour} {dom} {month} {dow}"


starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@example(expr="0 0 2 ? * 1", tz="Europe/Berlin", start=datetime(2024, 3, 31, 0, 0, tzinfo=UTC), policy="wall_clock")
@given(
    expr=expressions(),
    tz=st.sampled_from(ZONES),
    start=starts,
    policy=st.sampled_from(["wall_clock", "quartz"]),
)
def test_fire_times_match_increase_and_agree(expr: str, tz: str, start: datetime, policy: str) -> None:
    cron = CronExpression(expr, tz, policy)
    chain: list[datetime] = []
    t = start
    slowest = 0.0
    for _ in range(6):
        began = time.perf_counter()
        nxt = cron.next_after(t)
        slowest = max(slowest, time.perf_counter() - began)
        if nxt is None:
            break
        assert nxt > t
        assert nxt.tzinfo is UTC
        assert nxt.microsecond == 0
        chain.append(nxt)
        t = nxt
    assert len(set(chain)) == len(chain)
    assert list(islice(cron.iter_after(start), len(chain))) == chain
    if chain:
        assert cron.next_after(start) == chain[0]
    local_matches = [cron.matches(f) for f in chain]
    if policy == "quartz":
        assert all(local_matches)  # Quartz fires only at local times that exist and match
    else:
        # wall_clock also fires nonexistent local times at their fold=0 instant; the
        # fold=0 local reading of every fire matches
        for fire, ok in zip(chain, local_matches, strict=True):
            assert ok or _gap_fire_matches(cron, fire)
    assert slowest < 0.05, f"a next_after call took {slowest * 1000:.1f} ms"


def _gap_fire_matches(cron: CronExpression, fire: datetime) -> bool:
    """The fire is a nonexistent local time W fired at W - offset_before."""
    zone = cron.timezone
    before = (fire - timedelta(hours=3)).astimezone(zone).utcoffset()
    assert before is not None
    wall = (fire + before).replace(tzinfo=None)
    f = cron.fields
    return (
        wall.second in f.seconds
        and wall.minute in f.minutes
        and wall.hour in f.hours
        and wall.month in f.months
        # really a nonexistent reading: it does not survive a round trip through UTC (zoneinfo
        # reads a nonexistent time with the offset before the gap, which is exactly `fire`)
        and wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall
    )


@settings(max_examples=60, deadline=None)
@given(expr=expressions(), start=starts)
def test_wall_clock_equals_quartz_in_utc(expr: str, start: datetime) -> None:
    fast = CronExpression(expr, "UTC")
    port = CronExpression(expr, "UTC", "quartz")
    assert list(islice(fast.iter_after(start), 5)) == list(islice(port.iter_after(start), 5))


@settings(max_examples=60, deadline=None)
@given(expr=expressions())
def test_normalised_text_round_trips(expr: str) -> None:
    cron = CronExpression(expr.lower())
    assert CronExpression(str(cron)) == cron
    assert cron.describe()
