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
``repeat``, ``start``, ``end``) or the stored spec's keys (``type``, ``expression``, ...).

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

from ..db.models import Trigger, Workflow
from ..errors import Conflict, InvalidInput, InvalidTriggerSpec
from ..triggers import parse_trigger_spec
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
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise InvalidInput(f"file: '{path}' is not valid {kind}: {first}") from None
    if isinstance(data, dict) and "workflows" in data and "name" not in data:
        data = data["workflows"]
    docs = data if isinstance(data, list) else [data]
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise InvalidInput(f"workflows[{i}]: must be a mapping with at least 'name' and 'steps'")
    return docs


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
        dry_run: bool = False,
        prune: bool = False,
        user_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Create or update workflows and their triggers by name, in ONE transaction.

        Returns the changes (``action`` create/update/delete, ``kind``, ``name``, ``fields``);
        unchanged objects are not listed, so applying the same file twice returns ``[]``.
        """
        now = self.clock()
        plan: list[dict[str, Any]] = []
        changed_triggers: list[uuid.UUID] = []
        try:
            self._apply_in_session(docs, plan, changed_triggers, now=now, dry_run=dry_run, prune=prune, user_id=user_id)
        except _DryRunDone:
            return plan
        self._mirror(changed_triggers)
        return plan

    def _apply_in_session(
        self,
        docs: Sequence[Mapping[str, Any]],
        plan: list[dict[str, Any]],
        changed_triggers: list[uuid.UUID],
        *,
        now: datetime,
        dry_run: bool,
        prune: bool,
        user_id: str | None,
    ) -> None:
        names_seen: set[str] = set()
        with self._session() as s:
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
                    name, spec_data = trigger_entry_to_spec(entry, where)
                    name = name or f"{spec_data['type']}-{j + 1}"
                    try:
                        check_name(name, "trigger")
                    except ValueError as exc:
                        raise InvalidInput(f"{where}.name: {exc}", field="name") from None
                    if name in listed:
                        raise Conflict(f"{where}.name: '{name}' appears twice in workflow '{wf.name}'")
                    listed.add(name)
                    old = existing.get(name)
                    if old is not None and old.type == "interval" and "start_at" not in spec_data:
                        spec_data["start_at"] = old.spec.get("start_at")  # keep the anchor
                    try:
                        parsed = parse_trigger_spec(spec_data, now=now, allow_past=old is not None)
                    except InvalidInput as exc:
                        raise type(exc)(f"{where}.{exc}", field=exc.field) from None
                    full = f"{wf.name}/{name}"
                    if old is None:
                        tr = self._new_trigger(s, wf, name, parsed, now, user_id)
                        changed_triggers.append(tr.id)
                        plan.append({"action": "create", "kind": "trigger", "name": full, "fields": []})
                    elif parsed.model_dump(mode="json") != old.spec:
                        fields = sorted(k for k, v in parsed.model_dump(mode="json").items() if old.spec.get(k) != v)
                        self._apply_spec(old, parsed, now)
                        old.anchor_at = max(now, old.anchor_at)
                        old.version += 1
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


