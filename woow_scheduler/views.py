"""Read models returned by the service layer: the stable, documented JSON shapes of the CLI and API.

Times serialise as ISO 8601 with an explicit offset (``2026-01-01T09:00:00+00:00``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from .db.models import Execution, Trigger, Workflow

IsoTime = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]


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

    @classmethod
    def of(cls, wf: Workflow) -> WorkflowView:
        return cls(
            id=wf.id,
            name=wf.name,
            description=wf.description,
            steps=list(wf.steps),
            concurrency=str(wf.concurrency),
            max_retries=wf.max_retries,
            retry_delay=wf.retry_delay,
            retry_backoff=wf.retry_backoff,
            timeout=wf.timeout,
            max_queue_wait=wf.max_queue_wait,
            owner_user_id=wf.owner_user_id,
            created_at=wf.created_at,
            updated_at=wf.updated_at,
        )


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

    @classmethod
    def of(cls, tr: Trigger, workflow_name: str, *, blocked: bool = False) -> TriggerView:
        state = str(tr.state)
        if blocked and state == "NORMAL":
            state = "BLOCKED"
        return cls(
            id=tr.id,
            workflow_id=tr.workflow_id,
            workflow=workflow_name,
            name=tr.name,
            type=tr.type,
            spec=dict(tr.spec),
            timezone=tr.timezone,
            dst_policy=tr.dst_policy,
            state=state,
            misfire_policy=tr.misfire_policy,
            start_at=tr.start_at,
            end_at=tr.end_at,
            repeat_count=tr.repeat_count,
            fire_count=tr.fire_count,
            previous_fire_time=tr.previous_fire_time,
            next_fire_time=tr.next_fire_time,
            version=tr.version,
            created_by=tr.created_by,
            created_at=tr.created_at,
        )


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
    error: str | None
    steps: list[dict[str, Any]]
    created_at: IsoTime

    @classmethod
    def of(cls, ex: Execution, workflow_name: str | None = None) -> ExecutionView:
        return cls(
            id=ex.id,
            workflow_id=ex.workflow_id,
            workflow=workflow_name,
            trigger_id=ex.trigger_id,
            user_id=ex.user_id,
            scheduled_for=ex.scheduled_for,
            enqueued_at=ex.enqueued_at,
            started_at=ex.started_at,
            finished_at=ex.finished_at,
            duration_ms=ex.duration_ms,
            status=str(ex.status),
            attempt=ex.attempt,
            worker=ex.worker,
            celery_task_id=ex.celery_task_id,
            error=ex.error,
            steps=list(ex.steps or []),
            created_at=ex.created_at,
        )
