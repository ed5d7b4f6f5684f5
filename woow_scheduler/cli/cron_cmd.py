"""``woow cron``: preview any cron expression without touching a store."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from ..errors import InvalidInput
from .trigger import print_times


@click.group()
def cron() -> None:
    """Work with cron expressions (Quartz syntax with seconds, or Unix 5-field)."""


@cron.command("next")
@click.argument("expression")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone the expression is read in.")
@click.option(
    "--after", default=None, metavar="DATETIME", help="Start instant (ISO 8601; naive = --tz) [default: now]."
)
@click.option("-n", "--count", "count", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many.")
@click.option("--dst-policy", type=click.Choice(["wall_clock", "quartz"]), default="wall_clock", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def next_(expression: str, tz: str, after: str | None, count: int, dst_policy: str, as_json: bool) -> None:
    """The next N fire times of EXPRESSION, local and UTC.

    \b
    Example: woow cron next "0 0 9 ? * MON-FRI" --tz Europe/Berlin -n 5
    """
    from ..cron import CronExpression

    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"tz: unknown IANA time zone '{tz}' (e.g. UTC, Europe/Berlin)") from None
    if after is None:
        start = datetime.now(UTC)
    else:
        try:
            start = datetime.fromisoformat(after)
        except ValueError:
            raise InvalidInput(f"after: '{after}' is not an ISO 8601 date-time") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
    expr = CronExpression(expression, timezone=tz, dst_policy=dst_policy)
    times = []
    for t in expr.iter_after(start):
        times.append(t)
        if len(times) >= count:
            break
    if not as_json:
        click.echo(f"{expr}: {expr.describe()}")
    print_times(times, tz, as_json)
