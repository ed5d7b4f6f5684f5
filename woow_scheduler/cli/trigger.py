"""``woow trigger``: add, list, show, pause, resume, delete and preview triggers."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from ..errors import InvalidTriggerSpec
from ..labels import parse_label_args
from ..views import TriggerView
from .context import AppContext, pass_app
from .output import emit_json, fmt_time, kv, table

JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
_RELATIVE = re.compile(r"^\+\s*(.+)$")
_CAL_EVERY = re.compile(r"^(\d{1,7})\s*(second|minute|hour|day|week|month|year)s?$")


def parse_when(value: str | None, field: str, *, now: datetime | None = None) -> str | None:
    """ISO 8601 (naive = the trigger's time zone), 'now', or '+DURATION' relative to now ('+10m')."""
    if value is None:
        return None
    from ..triggers import parse_duration

    text = value.strip()
    now = now or datetime.now(UTC)
    if now.microsecond:  # fire times are whole seconds: 'now' and '+DURATION' round up to the next one
        now = now.replace(microsecond=0) + timedelta(seconds=1)
    if text.lower() == "now":
        return now.isoformat()
    m = _RELATIVE.match(text)
    if m:
        try:
            seconds = parse_duration(m.group(1))
        except ValueError as exc:
            raise InvalidTriggerSpec(f"{field}: '{value}' is not a relative time like +30s or +1h ({exc})") from None
        return (now + timedelta(seconds=seconds)).isoformat()
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTriggerSpec(
            f"{field}: '{value}' is not a date-time; use ISO 8601 like 2026-12-24T18:00:00+01:00, "
            "'now' or '+10m' (no offset = the trigger's --tz)"
        ) from None
    return text


@click.group()
def trigger() -> None:
    """Add, list, pause, resume, delete and preview triggers."""


@trigger.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@click.option(
    "--cron", "cron_expr", metavar="EXPR", help="Quartz cron 'sec min hour dom month dow [year]' (or Unix 5-field)."
)
@click.option("--every", metavar="DURATION", help="Fixed interval: 30, 45s, 5m, 1h30m, 1d.")
@click.option("--at", "at", metavar="DATETIME", help="One-time fire: ISO 8601, or +10m from now.")
@click.option(
    "--tz",
    default=None,
    help="IANA time zone for the cron and for times without offset [default: WOOW_TIMEZONE or UTC].",
)
@click.option(
    "--dst-policy",
    type=click.Choice(["wall_clock", "quartz"]),
    default="wall_clock",
    show_default=True,
    help="How cron handles DST changes.",
)
@click.option(
    "--daily-every",
    metavar="DURATION",
    help="Daily time interval (Quartz DailyTimeIntervalTrigger): every 90s, 15m or 2h within --between on --days.",
)
@click.option("--between", metavar="HH:MM-HH:MM", help="--daily-every: window of the day, ends included [all day].")
@click.option("--days", metavar="DAYS", help="--daily-every: days of the week, e.g. MON-FRI or MON,WED,SAT [all].")
@click.option(
    "--calendar-every",
    metavar="N+UNIT",
    help="Calendar interval (Quartz CalendarIntervalTrigger) from --start: 1month, 2week, 3day, 1year, 6hour ...",
)
@click.option("--preserve-hour", is_flag=True, help="--calendar-every: keep the hour of day across DST changes.")
@click.option(
    "--skip-missing-hour", is_flag=True, help="--calendar-every with --preserve-hour: skip days that lack that hour."
)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label (repeatable): team=finance.")
@click.option(
    "--calendar", "calendar_name", default=None, metavar="NAME", help="Skip the times calendar NAME excludes."
)
@click.option("--jitter", default=None, metavar="DURATION", help="Spread each fire by a fixed offset in [0, jitter).")
@click.option("--priority", type=int, default=None, help="Fires due in the same second: higher goes first [0].")
@click.option("--name", default=None, help="Trigger name, unique within the workflow [default: TYPE-N].")
@click.option("--start", default=None, metavar="DATETIME", help="No fire before this instant (interval anchor).")
@click.option("--end", default=None, metavar="DATETIME", help="No fire after this instant.")
@click.option(
    "--repeat", type=int, default=None, help="--every / --daily-every: repeats after the first fire (Quartz)."
)
@click.option(
    "--misfire",
    type=click.Choice(["fire_once_now", "skip", "fire_all"]),
    default="fire_once_now",
    show_default=True,
    help="What to do with fires missed while beat was down or late.",
)
@click.option(
    "--misfire-threshold",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds late before a fire counts as missed.",
)
@click.option("--max-catchup", type=int, default=100, show_default=True, help="Bound of fire_all catch-up.")
@click.option("--allow-past", is_flag=True, help="Accept an --at in the past (it fires at once).")
@click.option("--user", default=None, help="User id recorded as the trigger's creator and in its fires.")
@JSON_OPT
@pass_app
def add(
    app: AppContext,
    workflow_ref: str,
    cron_expr: str | None,
    every: str | None,
    at: str | None,
    daily_every: str | None,
    between: str | None,
    days: str | None,
    calendar_every: str | None,
    preserve_hour: bool,
    skip_missing_hour: bool,
    labels: tuple[str, ...],
    calendar_name: str | None,
    jitter: str | None,
    priority: int | None,
    tz: str | None,
    dst_policy: str,
    name: str | None,
    start: str | None,
    end: str | None,
    repeat: int | None,
    misfire: str,
    misfire_threshold: float,
    max_catchup: int,
    allow_past: bool,
    user: str | None,
    as_json: bool,
) -> None:
    """Add a trigger to WORKFLOW: exactly one of --cron, --every, --at, --daily-every, --calendar-every."""
    kinds = (("--cron", cron_expr), ("--every", every), ("--at", at), ("--daily-every", daily_every),
             ("--calendar-every", calendar_every))  # fmt: skip
    chosen = [n for n, v in kinds if v is not None]
    if len(chosen) != 1:
        raise InvalidTriggerSpec(
            "type: give exactly one of --cron, --every, --at, --daily-every or --calendar-every"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    if repeat is not None and every is None and daily_every is None:
        raise InvalidTriggerSpec("repeat_count: --repeat applies to --every and --daily-every triggers only")
    if (between is not None or days is not None) and daily_every is None:
        raise InvalidTriggerSpec("days_of_week: --between and --days apply to --daily-every triggers only")
    if (preserve_hour or skip_missing_hour) and calendar_every is None:
        raise InvalidTriggerSpec(
            "preserve_hour_across_dst: --preserve-hour and --skip-missing-hour apply to --calendar-every only"
        )
    spec: dict[str, Any] = {
        "timezone": tz or app.settings.timezone,
        "misfire_policy": misfire,
        "misfire_threshold": misfire_threshold,
        "max_catchup": max_catchup,
        "start_at": parse_when(start, "start_at"),
        "end_at": parse_when(end, "end_at"),
        "jitter": jitter,
        "priority": priority,
    }
    if cron_expr is not None:
        spec.update(type="cron", expression=cron_expr, dst_policy=dst_policy)
    elif every is not None:
        spec.update(type="interval", every=every, repeat_count=repeat)
    elif daily_every is not None:
        spec.update(type="daily_time_interval", every=daily_every, repeat_count=repeat, days_of_week=days)
        if between is not None:
            first, sep, last = between.partition("-")
            if not sep:
                raise InvalidTriggerSpec(f"start_time_of_day: --between '{between}' must be HH:MM-HH:MM")
            spec.update(start_time_of_day=first.strip(), end_time_of_day=last.strip())
    elif calendar_every is not None:
        m = _CAL_EVERY.match(calendar_every.strip().lower())
        if m is None:
            raise InvalidTriggerSpec(
                f"every: --calendar-every '{calendar_every}' must be a count and a unit like 1month, 2week, 3day"
            )
        spec.update(
            type="calendar_interval",
            every=int(m[1]),
            unit=m[2],
            preserve_hour_across_dst=preserve_hour,
            skip_day_if_hour_does_not_exist=skip_missing_hour,
        )
    else:
        spec.update(type="once", run_at=parse_when(at, "run_at"))
    spec = {k: v for k, v in spec.items() if v is not None}
    view = app.service.add_trigger(
        workflow_ref,
        spec,
        name=name,
        user_id=user,
        allow_past=allow_past,
        calendar=calendar_name,
        labels=parse_label_args(labels),
    )
    if as_json:
        emit_json(view.to_json())
        return
    nxt = fmt_time(view.next_fire_time, view.timezone) if view.next_fire_time else "never"
    click.echo(f"added trigger {view.name} ({view.id}) to {view.workflow}; next fire {nxt}")
    click.echo(f"  {describe_stored(view)}")


def describe_stored(view: TriggerView) -> str:
    """What the stored trigger does, in plain words (so '0 0 9 * *' reads as 'day 9', not '9:00')."""
    from pydantic import TypeAdapter

    from ..triggers import TriggerSpec

    return TypeAdapter(TriggerSpec).validate_python(dict(view.spec)).describe()


def _spec_text(v: TriggerView) -> str:
    s = v.spec
    if v.type == "cron":
        return str(s.get("expression"))
    if v.type == "interval":
        rep = f" x{s['repeat_count'] + 1}" if s.get("repeat_count") is not None else ""
        return f"every {s.get('every')}s{rep}"
    if v.type == "daily_time_interval":
        days = ",".join(s.get("days_of_week") or [])
        return f"every {s.get('every')}s {s.get('start_time_of_day')}-{s.get('end_time_of_day')} {days}"
    if v.type == "calendar_interval":
        return f"every {s.get('every')} {s.get('unit')}"
    return f"at {fmt_time(s.get('run_at'), v.timezone)}"


@trigger.command("list")
@click.option("--workflow", "workflow_ref", default=None, help="Only this workflow's triggers.")
@click.option("--state", default=None, help="NORMAL, PAUSED, COMPLETE, ERROR or BLOCKED.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only triggers with this label (repeatable: all must match).",
)
@JSON_OPT
@pass_app
def list_(app: AppContext, workflow_ref: str | None, state: str | None, labels: tuple[str, ...], as_json: bool) -> None:
    """List triggers with their state and next / previous fire times."""
    views = app.service.list_triggers(workflow=workflow_ref, state=state, labels=parse_label_args(labels))
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    table(
        None,
        ["id", "workflow", "name", "type", "spec", "tz", "calendar", "state", "next fire", "previous fire", "fires"],
        [
            (
                str(v.id)[:8],
                v.workflow,
                v.name,
                v.type,
                _spec_text(v),
                v.timezone,
                v.calendar,
                v.state,
                fmt_time(v.next_fire_time, v.timezone),
                fmt_time(v.previous_fire_time, v.timezone),
                v.fire_count,
            )
            for v in views
        ],
    )


def _describe(view: TriggerView) -> str | None:
    from ..service import spec_from_stored

    try:
        return spec_from_stored(view.spec).describe()
    except ValueError:  # a spec this version cannot read: show the rest
        return None


def _show(view: TriggerView, as_json: bool, verb: str | None = None) -> None:
    if as_json:
        emit_json(view.to_json())
        return
    if verb:
        click.echo(f"{verb} trigger {view.name} ({view.id}) of {view.workflow}: {view.state}")
        return
    kv(
        [
            ("id", view.id),
            ("workflow", f"{view.workflow} ({view.workflow_id})"),
            ("name", view.name),
            ("type", view.type),
            ("spec", _spec_text(view)),
            ("description", _describe(view)),
            ("labels", ", ".join(f"{k}={v}" for k, v in sorted(view.labels.items()))),
            ("timezone", view.timezone),
            ("calendar", view.calendar),
            ("dst_policy", view.dst_policy if view.type == "cron" else None),
            ("state", view.state),
            ("misfire_policy", view.misfire_policy),
            ("window", f"{fmt_time(view.start_at)} .. {fmt_time(view.end_at)}"),
            ("repeat_count", view.repeat_count),
            ("fire_count", view.fire_count),
            ("previous_fire_time", fmt_time(view.previous_fire_time, view.timezone)),
            ("next_fire_time", fmt_time(view.next_fire_time, view.timezone)),
            ("created_by", view.created_by),
            ("version", view.version),
        ]
    )


TRIGGER_ARG = click.argument("trigger_ref", metavar="TRIGGER_ID")


@trigger.command()
@TRIGGER_ARG
@JSON_OPT
@pass_app
def show(app: AppContext, trigger_ref: str, as_json: bool) -> None:
    """Show one trigger (id, id prefix, unique name, or WORKFLOW/NAME)."""
    _show(app.service.get_trigger(trigger_ref), as_json)


_GROUP_REF = click.argument("trigger_ref", metavar="[TRIGGER_ID]", required=False)
_GROUP_OPTS = [
    click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Every trigger with this label."),
    click.option("--workflow", "workflow_ref", default=None, help="Every trigger of this workflow."),
    click.option("--all", "all_triggers", is_flag=True, help="Every trigger."),
]


def _group(f: Any) -> Any:
    for opt in reversed(_GROUP_OPTS):
        f = opt(f)
    return f


def _set_state(
    app: AppContext,
    target: str,
    trigger_ref: str | None,
    labels: tuple[str, ...],
    workflow_ref: str | None,
    all_triggers: bool,
    as_json: bool,
) -> None:
    from ..enums import TriggerState

    chosen = [x for x in (trigger_ref, labels, workflow_ref, all_triggers) if x]
    if len(chosen) != 1:
        raise InvalidTriggerSpec("selector: give exactly one of TRIGGER_ID, --label, --workflow or --all")
    verb = "paused" if target == "PAUSED" else "resumed"
    if trigger_ref is not None:
        one = app.service.pause_trigger(trigger_ref) if target == "PAUSED" else app.service.resume_trigger(trigger_ref)
        _show(one, as_json, verb)
        return
    views = app.service.set_triggers_state(
        TriggerState(target),
        labels=parse_label_args(labels) or None,
        workflow=workflow_ref,
        all_triggers=all_triggers,
    )
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    click.echo(f"{verb} {len(views)} trigger(s)" + "".join(f"\n  {v.workflow}/{v.name}" for v in views))


@trigger.command()
@_GROUP_REF
@_group
@JSON_OPT
@pass_app
def pause(
    app: AppContext,
    trigger_ref: str | None,
    labels: tuple[str, ...],
    workflow_ref: str | None,
    all_triggers: bool,
    as_json: bool,
) -> None:
    """Pause a trigger, or every trigger with --label K=V, of --workflow NAME, or --all (one transaction)."""
    _set_state(app, "PAUSED", trigger_ref, labels, workflow_ref, all_triggers, as_json)


@trigger.command()
@_GROUP_REF
@_group
@JSON_OPT
@pass_app
def resume(
    app: AppContext,
    trigger_ref: str | None,
    labels: tuple[str, ...],
    workflow_ref: str | None,
    all_triggers: bool,
    as_json: bool,
) -> None:
    """Resume paused triggers (one, --label, --workflow or --all); missed fires are not caught up."""
    _set_state(app, "NORMAL", trigger_ref, labels, workflow_ref, all_triggers, as_json)


@trigger.command()
@TRIGGER_ARG
@JSON_OPT
@pass_app
def delete(app: AppContext, trigger_ref: str, as_json: bool) -> None:
    """Delete a trigger (its execution history is kept)."""
    _show(app.service.delete_trigger(trigger_ref), as_json, "deleted")


def _instant(value: str, field: str, zone: str) -> datetime:
    text = parse_when(value, field)
    assert text is not None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(zone))


@trigger.command()
@TRIGGER_ARG
@click.option(
    "--from", "from_", required=True, metavar="DATETIME", help="Window start (inclusive; naive = the trigger's zone)."
)
@click.option("--to", "to", required=True, metavar="DATETIME", help="Window end (inclusive).")
@click.option("--dry-run", is_flag=True, help="Only list the fires that would be enqueued.")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="At most this many fires."
)
@JSON_OPT
@pass_app
def backfill(app: AppContext, trigger_ref: str, from_: str, to: str, dry_run: bool, limit: int, as_json: bool) -> None:
    """Enqueue every nominal fire in [--from, --to] that has no execution yet, oldest first.

    Each goes out as the scheduled fire it would have been (same scheduled_for, so the same
    idempotency key: a second backfill of the window adds nothing); the worker applies the
    workflow's concurrency policy as for any fire.
    """
    view = app.service.get_trigger(trigger_ref)
    start, end = _instant(from_, "from", view.timezone), _instant(to, "to", view.timezone)
    view, fires = app.service.backfill_fires(trigger_ref, start, end, limit=limit)
    if dry_run:
        print_times(fires, view.timezone, as_json)
        return
    from ..messaging.publish import enqueue_fire
    from ..worker import get_app

    wf = app.service.get_workflow(str(view.workflow_id))
    celery = get_app(app.settings)
    with click.progressbar(
        fires,
        label=f"backfill {view.workflow}/{view.name}",
        file=sys.stderr,  # stdout stays the result
    ) as bar:
        for fire in bar:
            enqueue_fire(
                celery,
                app.settings,
                workflow_id=view.workflow_id,
                workflow_name=view.workflow,
                trigger_id=view.id,
                user_id=view.created_by,
                scheduled_for=fire,
                timeout=wf.timeout,
                backfill=True,
            )
    if as_json:
        emit_json({"trigger": f"{view.workflow}/{view.name}", "enqueued": [f.isoformat() for f in fires]})
    else:
        click.echo(f"enqueued {len(fires)} fire(s) of {view.workflow}/{view.name}")


@trigger.command("next")
@TRIGGER_ARG
@click.option("-n", "--count", "count", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many.")
@JSON_OPT
@pass_app
def next_(app: AppContext, trigger_ref: str, count: int, as_json: bool) -> None:
    """The trigger's next N fire times, local and UTC."""
    view = app.service.get_trigger(trigger_ref)
    times = app.service.next_fire_times(str(view.id), count)
    print_times(times, view.timezone, as_json)


def print_times(times: list[datetime], tz: str, as_json: bool) -> None:
    zone = ZoneInfo(tz)
    if as_json:
        emit_json(
            [
                {"local": t.astimezone(zone).isoformat(), "utc": t.astimezone(UTC).isoformat(), "timezone": tz}
                for t in times
            ]
        )
        return
    if not times:
        click.echo("no fire times: the schedule never fires again")
        return
    table(
        None,
        ["#", f"local ({tz})", "UTC"],
        [(i + 1, t.astimezone(zone).isoformat(), t.astimezone(UTC).isoformat()) for i, t in enumerate(times)],
    )
