"""``woow calendar``: named calendars (holiday, annual, weekly, monthly, daily, cron) for triggers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidCalendar
from .context import AppContext, pass_app
from .output import emit_json, kv, table

JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _definition(definition: str | None, file: str | None) -> dict[str, Any]:
    if (definition is None) == (file is None):
        raise InvalidCalendar("calendar: give exactly one of --definition JSON or --file PATH", field="calendar")
    try:
        text = definition if definition is not None else Path(str(file)).read_text()
    except OSError as exc:
        raise InvalidCalendar(f"file: cannot read '{file}': {exc.strerror}", field="file") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidCalendar(f"calendar: not valid JSON ({exc})", field="calendar") from None
    if not isinstance(data, dict):
        raise InvalidCalendar("calendar: must be a JSON object with a 'type'", field="calendar")
    return data


@click.group()
def calendar() -> None:
    """Named calendars: times a trigger with --calendar NAME skips (Quartz calendars)."""


_DEF = click.option(
    "--definition",
    metavar="JSON",
    help='e.g. \'{"type": "holiday", "dates": ["2026-12-25"], "timezone": "Europe/Berlin"}\'',
)
_FILE = click.option("--file", metavar="PATH", help="Read the JSON definition from a file.")


@calendar.command()
@click.argument("name")
@_DEF
@_FILE
@JSON_OPT
@pass_app
def add(app: AppContext, name: str, definition: str | None, file: str | None, as_json: bool) -> None:
    """Add calendar NAME (types: holiday, annual, weekly, monthly, daily, cron; an optional "base")."""
    view = app.service.add_calendar(name, _definition(definition, file))
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(f"added calendar {view.name}: {view.description}")


@calendar.command()
@click.argument("name")
@_DEF
@_FILE
@JSON_OPT
@pass_app
def update(app: AppContext, name: str, definition: str | None, file: str | None, as_json: bool) -> None:
    """Replace calendar NAME's definition; the triggers that use it are re-planned at once."""
    view = app.service.update_calendar(name, _definition(definition, file))
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(f"updated calendar {view.name}: {view.description}; {len(view.triggers)} trigger(s) re-planned")


@calendar.command("list")
@JSON_OPT
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """All calendars."""
    views = app.service.list_calendars()
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    table(None, ["name", "calendar", "triggers"], [(v.name, v.description, len(v.triggers)) for v in views])


@calendar.command()
@click.argument("name")
@JSON_OPT
@pass_app
def show(app: AppContext, name: str, as_json: bool) -> None:
    """One calendar, with the triggers that use it."""
    v = app.service.get_calendar(name)
    if as_json:
        emit_json(v.to_json())
        return
    kv(
        [
            ("name", v.name),
            ("calendar", v.description),
            ("definition", json.dumps(v.definition, sort_keys=True)),
            ("triggers", ", ".join(v.triggers)),
        ]
    )


@calendar.command()
@click.argument("name")
@JSON_OPT
@pass_app
def delete(app: AppContext, name: str, as_json: bool) -> None:
    """Delete calendar NAME (refused while a trigger uses it)."""
    view = app.service.delete_calendar(name)
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(f"deleted calendar {view.name}")
