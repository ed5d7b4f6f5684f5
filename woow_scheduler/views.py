"""Read models returned by the service layer: the stable, documented JSON shapes of the CLI and API.

Times serialise as ISO 8601 with an explicit offset (``2026-01-01T09:00:00+00:00``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from .db.models import Execution, Trigger, Workflow

IsoTime = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]


_V = TypeVar("_V", bound="_View")


def _from_row(cls: type[_V], row: Any, **override: Any) -> _V:
    """A view of an ORM row: every field read from the attribute of the same name, unless given."""
    data = {name: getattr(row, name) for name in cls.model_fields if name not in override}
    return cls.model_validate({**data, **override})


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class WorkflowView(_View):
    id: uuid.UUID
    name: str
    description: str
    steps: list[dict[str, Any]]
    concurrency: str
    max_retries: int
    retry_delay: float
    retry_backoff: bool
    timeout: float | None
    max_queue_wait: float | None
    owner_user_id: str | None
    created_at: IsoTime
    updated_at: IsoTime
    labels: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, wf: Workflow) -> WorkflowView:
        return _from_row(cls, wf)


class TriggerView(_View):
    id: uuid.UUID
    workflow_id: uuid.UUID
    workflow: str
    name: str
    type: str
    spec: dict[str, Any]
    timezone: str
    dst_policy: str
    state: str
    misfire_policy: str
    start_at: IsoTime | None
    end_at: IsoTime | None
    repeat_count: int | None
    fire_count: int
    previous_fire_time: IsoTime | None
    next_fire_time: IsoTime | None
    version: int
    created_by: str | None
    created_at: IsoTime
    labels: dict[str, str] = Field(default_factory=dict)
    #: the name of the calendar whose excluded times the trigger skips (None: no calendar)
    calendar: str | None = None

    @classmethod
    def of(cls, tr: Trigger, workflow_name: str, *, calendar: str | None, blocked: bool = False) -> TriggerView:
        state = str(tr.state)
        if blocked and state == "NORMAL":
            state = "BLOCKED"
        return _from_row(cls, tr, workflow=workflow_name, state=state, calendar=calendar)


class ExecutionView(_View):
    id: uuid.UUID
    workflow_id: uuid.UUID
    workflow: str | None = None
    trigger_id: uuid.UUID | None
    user_id: str | None
    scheduled_for: IsoTime | None
    enqueued_at: IsoTime | None
    started_at: IsoTime | None
    finished_at: IsoTime | None
    duration_ms: int | None
    status: str
    attempt: int
    worker: str | None
    celery_task_id: str | None
    #: the fence number of the workflow lock this run claimed (None: no lock, e.g. ``allow``)
    fence: int | None = None
    error: str | None
    steps: list[dict[str, Any]]
    created_at: IsoTime
    #: enqueued by a backfill (``woow trigger backfill``), not by beat
    backfill: bool = False
    #: the dispatch delay beat gave the fire for its trigger's jitter, in ms (None: no jitter)
    jitter_ms: int | None = None

    @classmethod
    def of(cls, ex: Execution, workflow_name: str | None = None) -> ExecutionView:
        return _from_row(cls, ex, workflow=workflow_name, steps=list(ex.steps or []))
