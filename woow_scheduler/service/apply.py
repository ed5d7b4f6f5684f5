"""Workflow files for ``woow workflow apply``: YAML or JSON, one workflow or a list.

.. code-block:: yaml

    name: nightly-report
    description: Build and mail the report
    concurrency: forbid
    steps:
      - {name: hello, type: log, config: {message: "report starts"}}
    triggers:
      - {name: weekdays, cron: "0 0 9 ? * MON-FRI", tz: Europe/Berlin}
      - {name: heartbeat, every: 5m}
      - {name: launch, at: "2026-12-24T18:00:00+01:00"}

Trigger entries take the CLI's short keys (``cron``/``every``/``at``, ``tz``, ``misfire``,
``repeat``, ``start``, ``end``) or the stored spec's keys (``type``, ``expression``, ...), and may
name a calendar (``calendar: holidays``).

A file may also define named calendars, by name, next to its workflows (a calendar the file
does not list is left alone; ``--prune`` never deletes calendars, other files may use them):

.. code-block:: yaml

    calendars:
      holidays: {type: holiday, dates: ["2026-12-25", "2027-01-01"]}
    workflows:
      - name: nightly-report
        steps: [...]
        triggers: [{name: weekdays, cron: "0 0 9 ? * MON-FRI", calendar: holidays}]

A single-workflow file may hold ``calendars`` at its top level too.

``Service.apply`` (:class:`ApplyOps`) writes a file's workflows and triggers in one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..calendars import calendar_json, parse_calendar
from ..db import trigger_state
from ..db.models import CalendarRow, Trigger, Workflow
from ..errors import Conflict, InvalidInput, InvalidTriggerSpec
from ..labels import check_labels
from ..triggers import parse_trigger_spec, spec_from_stored
from .triggers import TriggerOps
from .validation import check_name
from .workflows import WorkflowOps

_ALIASES = {
    "tz": "timezone",
    "misfire": "misfire_policy",
    "repeat": "repeat_count",
    "start": "start_at",
    "end": "end_at",
}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Read a workflow file into a list of workflow documents (not yet validated)."""
    return load_file(path)[1]


def load_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a workflow file: (its calendars by name, its workflow documents), not yet validated."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise InvalidInput(f"file: '{path}' is not valid {kind}: {first}") from None
    return split_file(data)


def split_file(data: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A parsed file -> (calendars by name, workflow documents).

    Shapes: one workflow (a mapping with ``name``, optionally with ``calendars``), a list of
    workflows, or a mapping of ``workflows`` and/or ``calendars``."""
    calendars: Any = {}
    if isinstance(data, dict) and "name" not in data and ("workflows" in data or "calendars" in data):
        unknown = sorted(set(data) - {"workflows", "calendars"})
        if unknown:
            raise InvalidInput(f"{unknown[0]}: not a known top-level key (workflows, calendars)", field=unknown[0])
        calendars = data.get("calendars") or {}
        data = data.get("workflows") or []
    elif isinstance(data, dict) and "calendars" in data:
        data = dict(data)
        calendars = data.pop("calendars") or {}
    if not isinstance(calendars, dict):
        raise InvalidInput(
            "calendars: must be a mapping of name to definition, like {holidays: {type: holiday, dates: [...]}}",
            field="calendars",
        )
    docs = data if isinstance(data, list) else [data]
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise InvalidInput(f"workflows[{i}]: must be a mapping with at least 'name' and 'steps'")
    return calendars, docs


def trigger_entry_to_spec(entry: Any, where: str) -> tuple[str | None, dict[str, Any]]:
    """One trigger entry of a file -> (name, spec mapping for ``parse_trigger_spec``)."""
    if not isinstance(entry, dict):
        raise InvalidTriggerSpec(f"{where}: must be a mapping like {{name: daily, cron: '0 0 9 * * ?'}}")
    data = dict(entry)
    name = data.pop("name", None)
    for short, full in _ALIASES.items():
        if short in data:
            data[full] = data.pop(short)
    kinds = [k for k in ("cron", "every", "at") if k in data]
    if data.get("type") in ("daily_time_interval", "calendar_interval"):
        kinds = [k for k in kinds if k != "every"]  # their own field, not the interval shorthand
    if len(kinds) > 1 or (kinds and "type" in data):
        raise InvalidTriggerSpec(f"{where}: give one of cron, every, at (or type)")
    if kinds == ["cron"]:
        data["type"], data["expression"] = "cron", data.pop("cron")
    elif kinds == ["every"]:
        data["type"] = "interval"
    elif kinds == ["at"]:
        data["type"], data["run_at"] = "once", data.pop("at")
    elif "type" not in data:
        raise InvalidTriggerSpec(f"{where}: needs one of cron, every or at")
    return (str(name) if name is not None else None), data


class ApplyOps(WorkflowOps, TriggerOps):
    # -- declarative files --------------------------------------------------------------------
    def apply(
        self,
        docs: Sequence[Mapping[str, Any]],
        *,
        calendars: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        prune: bool = False,
        user_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Create or update calendars (by name), then workflows and their triggers by name, in ONE
        transaction.

        Returns the changes (``action`` create/update/delete, ``kind``, ``name``, ``fields``);
        unchanged objects are not listed, so applying the same file twice returns ``[]``.
        """
        now = self.clock()
        plan: list[dict[str, Any]] = []
        changed_triggers: list[uuid.UUID] = []
        try:
            self._apply_in_session(
                docs,
                plan,
                changed_triggers,
                calendars=calendars or {},
                now=now,
                dry_run=dry_run,
                prune=prune,
                user_id=user_id,
            )
        except _DryRunDone:
            return plan
        self._mirror(changed_triggers)
        return plan

    @staticmethod
    def _apply_calendars(
        s: Session,
        calendars: Mapping[str, Any],
        plan: list[dict[str, Any]],
        changed_triggers: list[uuid.UUID],
        now: datetime,
    ) -> None:
        """Create or replace the file's calendars; a changed one re-plans every trigger using it."""
        for name, definition in calendars.items():
            where = f"calendars.{name}"
            try:
                check_name(name, "calendar")
            except ValueError as exc:
                raise InvalidInput(f"calendars: {exc}", field="calendars") from None
            if not isinstance(definition, dict):
                raise InvalidInput(
                    f"{where}: must be a mapping with a 'type', like {{type: holiday, dates: ['2026-12-25']}}",
                    field="calendars",
                )
            try:
                cal = parse_calendar(definition)
            except InvalidInput as exc:
                raise type(exc)(f"{where}.{exc}", field=exc.field) from None
            stored = calendar_json(cal)
            row = s.scalar(select(CalendarRow).where(CalendarRow.name == name))
            if row is None:
                s.add(CalendarRow(name=name, definition=stored))
                s.flush()
                plan.append({"action": "create", "kind": "calendar", "name": name, "fields": []})
            elif dict(row.definition) != stored:
                row.definition = stored
                for tr in s.scalars(select(Trigger).where(Trigger.calendar_id == row.id)):
                    trigger_state.replan(tr, spec_from_stored(tr.spec), now, cal)
                    changed_triggers.append(tr.id)
                s.flush()
                plan.append({"action": "update", "kind": "calendar", "name": name, "fields": ["definition"]})

    @staticmethod
    def _apply_calendar(s: Session, name: Any, where: str) -> CalendarRow | None:
        if name is None:
            return None
        if not isinstance(name, str):
            raise InvalidInput(f"{where}.calendar: must be the name of a calendar", field="calendar")
        row = s.scalar(select(CalendarRow).where(CalendarRow.name == name))
        if row is None:
            raise InvalidInput(f"{where}.calendar: '{name}' not found (woow calendar add)", field="calendar")
        return row

    def _apply_in_session(
        self,
        docs: Sequence[Mapping[str, Any]],
        plan: list[dict[str, Any]],
        changed_triggers: list[uuid.UUID],
        *,
        calendars: Mapping[str, Any],
        now: datetime,
        dry_run: bool,
        prune: bool,
        user_id: str | None,
    ) -> None:
        names_seen: set[str] = set()
        with self._session() as s:
            self._apply_calendars(s, calendars, plan, changed_triggers, now)
            for i, raw in enumerate(docs):
                doc = dict(raw)
                entries = doc.pop("triggers", []) or []
                if not isinstance(entries, list):
                    raise InvalidInput(f"workflows[{i}].triggers: must be a list", field="triggers")
                doc.setdefault("owner_user_id", user_id)
                wf_in = self._validate_workflow(doc)
                if wf_in.name in names_seen:
                    raise Conflict(f"workflows[{i}].name: '{wf_in.name}' appears twice in the file", field="name")
                names_seen.add(wf_in.name)
                # names are unique per owner; a file without owners updates the workflow of that name
                owned = "owner_user_id" in raw or user_id is not None
                wf = self._workflow_named(s, wf_in.name, owner=wf_in.owner_user_id, any_owner=not owned)
                if wf is None:
                    wf = Workflow(**wf_in.model_dump())
                    s.add(wf)
                    s.flush()
                    plan.append({"action": "create", "kind": "workflow", "name": wf.name, "fields": []})
                else:
                    new = wf_in.model_dump()
                    if "owner_user_id" not in raw and user_id is None:
                        new["owner_user_id"] = wf.owner_user_id
                    fields = sorted(k for k, v in new.items() if getattr(wf, k) != v)
                    for k in fields:
                        setattr(wf, k, new[k])
                    if fields:
                        plan.append({"action": "update", "kind": "workflow", "name": wf.name, "fields": fields})
                existing = {t.name: t for t in s.scalars(select(Trigger).where(Trigger.workflow_id == wf.id))}
                listed: set[str] = set()
                for j, entry in enumerate(entries):
                    where = f"workflows[{i}].triggers[{j}]"
                    extra = dict(entry) if isinstance(entry, dict) else {}
                    cal_name, labels = extra.pop("calendar", None), check_labels(extra.pop("labels", None) or {})
                    cal_row = self._apply_calendar(s, cal_name, where)
                    name, spec_data = trigger_entry_to_spec(extra if isinstance(entry, dict) else entry, where)
                    name = name or f"{spec_data['type']}-{j + 1}"
                    try:
                        check_name(name, "trigger")
                    except ValueError as exc:
                        raise InvalidInput(f"{where}.name: {exc}", field="name") from None
                    if name in listed:
                        raise Conflict(f"{where}.name: '{name}' appears twice in workflow '{wf.name}'")
                    listed.add(name)
                    old = existing.get(name)
                    defaults_start = ("interval", "daily_time_interval")
                    if old is not None and old.type in defaults_start and "start_at" not in spec_data:
                        spec_data["start_at"] = old.spec.get("start_at")  # keep the anchor
                    try:
                        parsed = parse_trigger_spec(spec_data, now=now, allow_past=old is not None)
                    except InvalidInput as exc:
                        raise type(exc)(f"{where}.{exc}", field=exc.field) from None
                    full = f"{wf.name}/{name}"
                    new_cal = cal_row.id if cal_row is not None else None
                    if old is None:
                        tr = self._new_trigger(s, wf, name, parsed, now, user_id, cal_row)
                        tr.labels = labels
                        changed_triggers.append(tr.id)
                        plan.append({"action": "create", "kind": "trigger", "name": full, "fields": []})
                    elif (
                        parsed.model_dump(mode="json") != old.spec
                        or old.calendar_id != new_cal
                        or (old.labels or {}) != labels
                    ):
                        fields = sorted(k for k, v in parsed.model_dump(mode="json").items() if old.spec.get(k) != v)
                        if old.calendar_id != new_cal:
                            fields.append("calendar")
                        if (old.labels or {}) != labels:
                            fields.append("labels")
                        old.calendar_id, old.labels = new_cal, labels
                        cal = parse_calendar(cal_row.definition) if cal_row else None
                        trigger_state.respecify(old, parsed, now, cal)
                        changed_triggers.append(old.id)
                        plan.append({"action": "update", "kind": "trigger", "name": full, "fields": fields})
                if prune:
                    for name, old in existing.items():
                        if name not in listed:
                            changed_triggers.append(old.id)
                            s.delete(old)
                            plan.append(
                                {"action": "delete", "kind": "trigger", "name": f"{wf.name}/{name}", "fields": []}
                            )
            if dry_run:
                raise _DryRunDone  # rolls the transaction back


class _DryRunDone(Exception):
    """Raised inside the apply transaction to roll a dry run back."""
