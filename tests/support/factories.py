"""Rows made straight in the database, for tests and benchmarks that need a workflow or a trigger
without going through the service (the service's own tests use the service)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from woow_scheduler.db import Database, Trigger, Workflow
from woow_scheduler.enums import ConcurrencyPolicy, TriggerState


def make_workflow(db: Database, steps: Sequence[Mapping[str, Any]] = (), **fields: Any) -> Workflow:
    fields.setdefault("name", f"wf-{uuid.uuid4().hex[:8]}")
    fields.setdefault("concurrency", ConcurrencyPolicy.FORBID)
    with db.session() as s:
        wf = Workflow(steps=list(steps), **fields)
        s.add(wf)
        s.flush()
    return wf


def make_trigger(
    db: Database,
    workflow: Any,
    spec: Mapping[str, Any] | None = None,
    *,
    updated_at: datetime | None = None,
    **fields: Any,
) -> Trigger:
    """One trigger row of ``workflow`` (its id, or anything with an ``id``: a row, a view; default
    spec: every second).

    ``updated_at`` (default now) is also its creation time and its anchor, as the service sets them
    on a change; any other column can be given in ``fields`` (``state``, ``previous_fire_time``...).
    """
    data = dict(spec) if spec is not None else {"type": "interval", "seconds": 1}
    when = updated_at or datetime.now(UTC)
    fields.setdefault("name", f"t-{uuid.uuid4().hex[:8]}")
    fields.setdefault("type", data.get("type", "interval"))
    for column in ("created_at", "updated_at", "anchor_at"):
        fields.setdefault(column, when)
    with db.session() as s:
        workflow_id = workflow if isinstance(workflow, uuid.UUID) else workflow.id
        tr = Trigger(workflow_id=workflow_id, spec=data, **fields)
        s.add(tr)
        s.flush()
    return tr


def insert_triggers(db: Database, specs: Sequence[dict[str, Any]], *, updated_at: datetime | None = None) -> None:
    """One workflow and one NORMAL trigger per spec, inserted in bulk (for benchmarks)."""
    now = updated_at or datetime.now(UTC)
    wf_id = uuid.uuid4()
    with db.session() as s:
        s.execute(insert(Workflow), [{"id": wf_id, "name": f"bench-{wf_id.hex[:6]}", "steps": []}])
    for i in range(0, len(specs), 10_000):
        rows = [
            {
                "id": uuid.uuid4(),
                "workflow_id": wf_id,
                "name": f"t{i + j}",
                "type": spec["type"],
                "spec": spec,
                "state": TriggerState.NORMAL,
                "version": 1,
                "fire_count": 0,
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
            for j, spec in enumerate(specs[i : i + 10_000])
        ]
        with db.session() as s:
            s.execute(insert(Trigger), rows)
