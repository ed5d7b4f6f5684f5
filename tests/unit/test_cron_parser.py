"""Parsing: accepted syntax, normalisation, dialects and strict one-line rejections."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from woow_scheduler.cron import CronExpression, Dialect
from woow_scheduler.cron.fields import DomKind, DowKind
from woow_scheduler.cron.parser import parse
from woow_scheduler.errors import InvalidCronExpression, WoowError
from woow_scheduler.triggers import CronSpec, parse_trigger_spec, spec_from_stored

_LAST = datetime.now(UTC).year + 100  # Quartz's MAX_YEAR


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("0 0 9 ? * mon-fri", "0 0 9 ? * MON-FRI"),
        ("0\t0  9 ? *\t\tMON-FRI", "0 0 9 ? * MON-FRI"),
        ("  0 0 9 * * ?  ", "0 0 9 * * ?"),
        ("0 0 12 1 nov-feb ? 2026", "0 0 12 1 NOV-FEB ? 2026"),
        ("0 0 9 lw * ?", "0 0 9 LW * ?"),
        ("0 0 10 ? * fri#3", "0 0 10 ? * FRI#3"),
    ],
)
def test_normalisation(text: str, normalised: str) -> None:
    expr = CronExpression(text)
    assert str(expr) == normalised == expr.expression
    assert CronExpression(str(expr)) == expr


@pytest.mark.parametrize(
    ("text", "seconds", "minutes", "hours"),
    [
        ("0/15 * * * * ?", (0, 15, 30, 45), tuple(range(60)), tuple(range(24))),
        ("5/20 10-50/7 * * * ?", (5, 25, 45), (10, 17, 24, 31, 38, 45), tuple(range(24))),
        ("*/10 0 22-2 * * ?", (0, 10, 20, 30, 40, 50), (0,), (0, 1, 2, 22, 23)),
        ("0 50-10 22-2/2 * * ?", (0,), (*range(0, 11), *range(50, 60)), (0, 2, 22)),
        ("1,2,3 0,59 23 * * ?", (1, 2, 3), (0, 59), (23,)),
    ],
)
def test_time_fields(
    text: str, seconds: tuple[int, ...], minutes: tuple[int, ...], hours: tuple[int, ...]
) -> None:
    f = CronExpression(text).fields
    assert (f.seconds, f.minutes, f.hours) == (seconds, minutes, hours)


@pytest.mark.parametrize(
    ("text", "months", "dows"),
    [
        ("0 0 0 ? NOV-FEB FRI-MON", (1, 2, 11, 12), (1, 2, 6, 7)),
        ("0 0 0 ? 2/3 */2", (2, 5, 8, 11), (1, 3, 5, 7)),
        ("0 0 0 ? * 7-1", tuple(range(1, 13)), (1, 7)),
        ("0 0 0 ? jan,Jul sun,Wed,fri", (1, 7), (1, 4, 6)),
        ("0 0 0 ? * L", tuple(range(1, 13)), (7,)),  # 'L' alone in day-of-week is Saturday
    ],
)
def test_month_and_dow(text: str, months: tuple[int, ...], dows: tuple[int, ...]) -> None:
    f = CronExpression(text).fields
    assert f.months == months
    assert f.dow_values == dows


@pytest.mark.parametrize(
    ("dom", "kind", "values", "offset"),
    [
        ("L", DomKind.LAST, (), 0),
        ("L-3", DomKind.LAST, (), 3),
        ("LW", DomKind.LAST_WEEKDAY, (), 0),
        ("L-2W", DomKind.LAST_WEEKDAY, (), 2),
        ("15W", DomKind.NEAREST, (15,), 0),
        ("28-3", DomKind.SET, (1, 2, 3, 28, 29, 30, 31), 0),
        ("*", DomKind.ANY, tuple(range(1, 32)), 0),
        ("1/10", DomKind.SET, (1, 11, 21, 31), 0),
    ],
)
def test_day_of_month_forms(dom: str, kind: DomKind, values: tuple[int, ...], offset: int) -> None:
    f = CronExpression(f"0 0 0 {dom} * ?").fields
    assert (f.dom_kind, f.dom_values, f.dom_offset) == (kind, values, offset)


def test_day_of_week_forms() -> None:
    f = CronExpression("0 0 0 ? * 6L").fields
    assert (f.dow_kind, f.dow_values) == (DowKind.LAST, (6,))
    f = CronExpression("0 0 0 ? * 2#5").fields
    assert (f.dow_kind, f.dow_values, f.dow_nth) == (DowKind.NTH, (2,), 5)


def test_years() -> None:
    assert CronExpression("0 0 0 1 1 ? 2026-2030/2").fields.years == (2026, 2028, 2030)
    assert CronExpression("0 0 0 1 1 ? *").fields.years is None
    assert CronExpression("0 0 0 1 1 ? 1970,2099").fields.years == (1970, 2099)


def test_years_past_2099_as_quartz() -> None:
    """Quartz takes years up to the current year + 100: a leap day across the 2100 non-leap year."""
    fires = list(CronExpression("0 0 0 29 2 ? 2096-2104").iter_after(datetime(2026, 1, 1, tzinfo=UTC)))
    assert fires == [datetime(2096, 2, 29, tzinfo=UTC), datetime(2104, 2, 29, tzinfo=UTC)]


def test_years_up_to_the_current_year_plus_100_as_quartz() -> None:
    """Quartz's MAX_YEAR is the current year + 100: the bound and its message follow the clock (the
    CLI, calendars) or the `now` a spec is validated at; a stored spec stays valid as years pass."""
    assert CronExpression(f"0 0 0 1 1 ? 2026-{_LAST}/50").fields.years == tuple(range(2026, _LAST + 1, 50))
    now = datetime(2030, 6, 1, tzinfo=UTC)
    assert parse_trigger_spec({"type": "cron", "expression": "0 0 0 1 1 ? 2130"}, now=now).expression.endswith("2130")
    with pytest.raises(InvalidCronExpression, match=r"^expression: year: '2131' is out of range 1970-2130$"):
        parse_trigger_spec({"type": "cron", "expression": "0 0 0 1 1 ? 2131"}, now=now)
    with pytest.raises(InvalidCronExpression, match=r"^expression: year: '2128' is out of range 1970-2127$"):
        parse_trigger_spec({"type": "cron", "expression": "0 0 0 1 1 ? 2128"}, now=datetime(2027, 1, 1, tzinfo=UTC))
    # written in 2030, read back today (whatever today's bound): still the same trigger
    stored = spec_from_stored({"type": "cron", "expression": "0 0 0 1 1 ? 2130"})
    assert isinstance(stored, CronSpec) and stored.cron.fields.years == (2130,)
    assert parse("0 0 0 29 2 ? 2096-2104", last_year=2104).years == tuple(range(2096, 2105))
    with pytest.raises(InvalidCronExpression, match="out of range 1970-2103"):
        parse("0 0 0 29 2 ? 2096-2104", last_year=2103)


def test_unix_dialect() -> None:
    expr = CronExpression("*/5 * * * *")
    assert expr.dialect is Dialect.UNIX
    assert str(expr) == "*/5 * * * * (unix)"
    assert expr.expression == "*/5 * * * *"
    assert CronExpression(str(expr)) == expr
    assert "Unix" in expr.describe()
    f = CronExpression("0 9 * * 0,7").fields
    assert f.dow_values == (1,)  # both Unix Sundays are Quartz 1
    f = CronExpression("0 9 1 * MON-FRI").fields
    assert f.day_or
    assert CronExpression("0 0 9 ? * MON").dialect is Dialect.QUARTZ


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 0 0 ? * 8", "day-of-week: '8' is out of range 1-7 (1=SUN) or SUN-SAT"),
        ("0 0 0 ? * 0", "day-of-week: '0' is out of range 1-7 (1=SUN) or SUN-SAT"),
        ("60 * * * * ?", "second: '60' is out of range 0-59"),
        ("* 60 * * * ?", "minute: '60' is out of range 0-59"),
        ("* * 24 * * ?", "hour: '24' is out of range 0-23"),
        ("0 0 0 32 * ?", "day-of-month: '32' is out of range 1-31"),
        ("0 0 0 0 * ?", "day-of-month: '0' is out of range 1-31"),
        ("0 0 0 1 13 ?", "month: '13' is out of range 1-12 or JAN-DEC"),
        ("0 0 0 1 FOO ?", "month: 'FOO' has an unknown name 'FOO'"),
        ("0 0 0 1 1 ? 1969", f"year: '1969' is out of range 1970-{_LAST}"),
        (f"0 0 0 1 1 ? {_LAST + 1}", f"year: '{_LAST + 1}' is out of range 1970-{_LAST}"),
        ("0 0 0 1 1 ? 2030-2026", "year: '2030-2026' is a range whose end is before its start"),
        ("*/-5 * * * * ?", "second: '*/-5' is not a valid item"),
        ("0/0 * * * * ?", "second: '0/0' has step 0"),
        ("0/60 * * * * ?", "second: '0/60' has step 60"),
        ("0 0 0 ? * MON,,WED", "day-of-week: 'MON,,WED' has an empty list item"),
        ("0 0 0 ? * MON,", "day-of-week: 'MON,' has an empty list item"),
        ("0 0 0 ? * ??", "day-of-week: '??' mixes '?'"),
        ("0 0 0 ? * ?", "both are '?'"),
        ("0 0 0 * * MON", "Quartz requires exactly one of them to be '?'"),
        ("0 0 0 1 * 2", "Quartz requires exactly one of them to be '?'"),
        ("0 0 0 ? * MON/2", "day-of-week: 'MON/2' combines a name with a step"),
        ("0 0 0 ? * MON-FRI/2", "combines a name with a step"),
        ("0 0 0 1W,15 * ?", "day-of-month: '1W,15' combines L or W with a list"),
        ("0 0 0 L,15 * ?", "combines L or W with a list"),
        ("0 0 0 L-31 * ?", "day-of-month: 'L-31' has an offset above 30"),
        ("0 0 0 32W * ?", "day-of-month: '32W' names a day out of range"),
        ("0 0 0 ? * 6L,2", "day-of-week: '6L,2' combines nL or n#k with a list"),
        ("0 0 0 ? * 6#6", "day-of-week: '6#6' has k outside 1-5"),
        ("0 0 0 ? * 6#0", "has k outside 1-5"),
        ("0 0 0 ? * 8L", "day-of-week: '8' is out of range"),
        ("0 0 0 ? * 1-2-3", "is not a valid item"),
        ("0 L 0 * * ?", "minute: 'L' uses 'L'"),
        ("0 ? 0 * * ?", "minute: '?' uses '?'"),
        ("0 0 0 1 1 ? 2026 5", "has 8 fields"),
        ("0 0 0 1", "has 4 fields"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("0 0 0 1 1 ? ?", "year: '?' uses '?'"),
        ("*/5 * * * * * (unix)", "marked (unix) but has 6 fields"),
        ("0 0 L * *", "uses 'L', which Unix cron does not support"),
        ("0 0 * * 1#2", "uses '#', which Unix cron does not support"),
        ("0 0 * * 8", "day-of-week: '8' is out of range 0-7 (0 or 7=SUN) or SUN-SAT"),
        ("0 0 0 ? * 1\n", "is not a valid item"),
    ],
)
def test_rejections(text: str, fragment: str) -> None:
    with pytest.raises(InvalidCronExpression) as info:
        CronExpression(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message.rstrip("\n'")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WoowError)
    assert info.value.field


def test_bad_timezone_and_policy() -> None:
    with pytest.raises(InvalidCronExpression, match="timezone: 'Mars/Olympus'"):
        CronExpression("0 0 0 * * ?", "Mars/Olympus")
    with pytest.raises(InvalidCronExpression, match="dst_policy: 'sometimes'"):
        CronExpression("0 0 0 * * ?", "UTC", "sometimes")
    with pytest.raises(InvalidCronExpression, match="expression: 5 is not a string"):
        CronExpression(5)  # type: ignore[arg-type]


def test_timezone_as_zoneinfo_and_cached() -> None:
    from zoneinfo import ZoneInfo

    expr = CronExpression("0 0 9 ? * MON-FRI", ZoneInfo("Europe/Berlin"))
    assert expr.timezone_name == "Europe/Berlin"
    assert CronExpression.cached("0 0 9 ? * MON-FRI", "Europe/Berlin") is CronExpression.cached(
        "0 0 9 ? * MON-FRI", "Europe/Berlin", "wall_clock"
    )
    assert expr == CronExpression.cached("0 0 9 ? * MON-FRI", "Europe/Berlin")
    assert "dst_policy='wall_clock'" in repr(expr)


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("0 0 9 ? * MON-FRI", "at 09:00:00, Monday through Friday"),
        ("0 0 9 * * ?", "at 09:00:00, every day"),
        ("0 0 8 ? * MON", "at 08:00:00, on Monday"),
        ("0 */15 * * * ?", "every 15 minutes, every day"),
        ("0 0 * ? * MON-FRI", "every hour at minute 0, Monday through Friday"),
        ("0 0 0 L * ?", "at 00:00:00, on the last day of the month"),
        ("0 0 0 LW * ?", "at 00:00:00, on the last weekday of the month"),
        ("0 0 0 ? * 6L", "at 00:00:00, on the last Friday of the month"),
        ("0 0 0 ? * 6#3", "at 00:00:00, on the third Friday of the month"),
        ("0 30 10 15W JAN,JUL ? 2026", "at 10:30:00, on the weekday nearest day 15 of the month, "
         "in January and July, in 2026"),
        ("0 0 12 ? * FRI-MON", "at 12:00:00, Friday through Monday"),
        ("*/10 * * * * ?", "every 10 seconds, every day"),
        ("0 0 12 ? NOV-FEB *", "at 12:00:00, every day, in November through February"),
        ("*/5 * * * *", "every 5 minutes, every day (Unix cron)"),
    ],
)  # fmt: skip
def test_describe(text: str, description: str) -> None:
    assert CronExpression(text).describe() == description
