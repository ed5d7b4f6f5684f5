"""Use cases on named calendars: add, change, read, list and delete.

A calendar is shared by the triggers that name it.  Changing one re-plans each of them in the
same transaction (a new version, so the reconciler rewrites their entries; write-through at
once); deleting one that is in use is refused with the names of its triggers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..calendars import Calendar, calendar_json, parse_calendar
from ..db.models import CalendarRow, Trigger, Workflow
from ..enums import TriggerState
from ..errors import Conflict, InvalidInput, NotFound
from .base import ServiceBase
from .validation import check_name, spec_from_stored


@dataclass(frozen=True, slots=True)
class CalendarView:
    name: str
    definition: dict[str, Any]
    description: str
    triggers: tuple[str, ...]  # WORKFLOW/TRIGGER of the triggers that use it
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "description": self.description,
            "triggers": list(self.triggers),
            "updated_at": self.updated_at.isoformat(),
        }


class CalendarOps(ServiceBase):
    def add_calendar(self, name: str, definition: Mapping[str, Any]) -> CalendarView:
        self._check_calendar_name(name)
        stored = calendar_json(parse_calendar(definition))
        with self._session() as s:
            if s.scalar(select(CalendarRow.id).where(CalendarRow.name == name)) is not None:
                raise Conflict(f"name: a calendar named '{name}' already exists", field="name")
            row = CalendarRow(name=name, definition=stored)
            s.add(row)
            s.flush()
            return self._calendar_view(s, row)

    def update_calendar(self, name: str, definition: Mapping[str, Any]) -> CalendarView:
        """Replace a calendar's definition; every trigger using it is re-planned at once."""
        stored = calendar_json(parse_calendar(definition))
        cal = parse_calendar(stored)
        now = self.clock()
        with self._session() as s:
            row = self._calendar_row(s, name)
            row.definition = stored
            users = list(s.scalars(select(Trigger).where(Trigger.calendar_id == row.id)))
            for tr in users:
                spec = spec_from_stored(tr.spec)
                tr.next_fire_time = spec.next_fire_time(max(now, tr.previous_fire_time or now), cal)
                if tr.state == TriggerState.NORMAL and tr.next_fire_time is None:
                    tr.state = TriggerState.COMPLETE
                elif tr.state == TriggerState.COMPLETE and tr.next_fire_time is not None:
                    tr.state = TriggerState.NORMAL
                tr.version += 1
                tr.updated_at = now
            s.flush()
            view = self._calendar_view(s, row)
            ids = [tr.id for tr in users]
        self._mirror(ids)
        return view

    def get_calendar(self, name: str) -> CalendarView:
        with self._session() as s:
            return self._calendar_view(s, self._calendar_row(s, name))

    def list_calendars(self) -> list[CalendarView]:
        with self._session() as s:
            rows = list(s.scalars(select(CalendarRow).order_by(CalendarRow.name)))
            return [self._calendar_view(s, r) for r in rows]

    def delete_calendar(self, name: str) -> CalendarView:
        with self._session() as s:
            row = self._calendar_row(s, name)
            view = self._calendar_view(s, row)
            if view.triggers:
                raise Conflict(
                    f"calendar: '{name}' is used by {len(view.triggers)} trigger(s): {', '.join(view.triggers)}; "
                    "remove it from them first",
                    field="calendar",
                )
            s.delete(row)
        return view

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _check_calendar_name(name: str) -> None:
        try:
            check_name(name, "calendar")
        except ValueError as exc:
            raise InvalidInput(f"name: {exc}", field="name") from None

    @staticmethod
    def _calendar_row(s: Session, name: str) -> CalendarRow:
        row = s.scalar(select(CalendarRow).where(CalendarRow.name == name))
        if row is None:
            raise NotFound(f"calendar: '{name}' not found")
        return row

    @staticmethod
    def _calendar_view(s: Session, row: CalendarRow) -> CalendarView:
        users = s.execute(
            select(Workflow.name, Trigger.name)
            .join(Workflow, Workflow.id == Trigger.workflow_id)
            .where(Trigger.calendar_id == row.id)
            .order_by(Workflow.name, Trigger.name)
        )
        return CalendarView(
            name=row.name,
            definition=dict(row.definition),
            description=parse_calendar(row.definition).describe(),
            triggers=tuple(f"{w}/{t}" for w, t in users),
            updated_at=row.updated_at,
        )


def calendar_of(s: Session, tr: Trigger) -> Calendar | None:
    """The calendar a trigger uses, parsed (None when it has none)."""
    if tr.calendar_id is None:
        return None
    row = s.get(CalendarRow, tr.calendar_id)
    return parse_calendar(row.definition) if row is not None else None
