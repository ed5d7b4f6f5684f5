"""The one wire contract of a fire: the ``execute_workflow`` task, its versioned kwargs, its shadow name.

Publishers (beat, ``woow workflow run``, the API) send these fields as the task's kwargs.  The worker
validates them before anything else: a missing, forged or unknown-version payload is logged and
dropped, never run.  Beat builds a fire's kwargs with :func:`fire_kwargs` (a plain dict on its hot
path); everyone else with :meth:`FirePayload.to_kwargs`; both give the same fields.

Versions: ``version`` is the oldest payload version a worker must understand to run the message.
Version 2 added two optional fields, sent only when set: ``backfill`` (the fire was enqueued by
``woow trigger backfill``) and ``jitter_ms`` (the dispatch delay beat gave a jittered fire).  A
message without them still says version 1, so workers of either version run ordinary fires; one
carrying them says version 2, which a version-1 worker drops with a line asking for an upgrade (beat's
fire journal publishes such a fire again, without the fields, once its message is overdue).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: The task every fire runs (the name is part of the wire: stored RedBeat entries name it).
TASK_EXECUTE = "woow.execute_workflow"
PAYLOAD_VERSION = 1  #: what a message without the version-2 fields says
BACKFILL_VERSION = 2  #: what a message with ``backfill`` or ``jitter_ms`` says
SUPPORTED_VERSIONS = frozenset({1, 2})


def shadow_name(workflow_name: str) -> str:
    """The task name Flower and the worker log show for a fire of this workflow."""
    return f"workflow:{workflow_name}"


def fire_kwargs(
    entry_kwargs: Mapping[str, Any], scheduled_for: str, enqueued_at: str, jitter_ms: int | None = None
) -> dict[str, Any]:
    """Beat's payload of one fire: the entry's ids plus the nominal time and the payload version
    (and, for a jittered trigger, the dispatch delay it gave the fire)."""
    kwargs = {
        "workflow_id": entry_kwargs.get("workflow_id"),
        "trigger_id": entry_kwargs.get("trigger_id"),
        "user_id": entry_kwargs.get("user_id"),
        "scheduled_for": scheduled_for,
        "version": PAYLOAD_VERSION,
        "enqueued_at": enqueued_at,
    }
    if jitter_ms is not None:
        kwargs["jitter_ms"] = jitter_ms
        kwargs["version"] = BACKFILL_VERSION
    return kwargs


class FirePayload(BaseModel):
    """kwargs of ``woow.execute_workflow``.

    - a scheduled fire: ``trigger_id`` + ``scheduled_for`` (the idempotency key of the fire);
    - a manual run: ``execution_id`` of the ``queued`` row created by the publisher;
    - neither: an ad-hoc run that creates its own row.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = PAYLOAD_VERSION
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID | None = None
    user_id: str | None = Field(default=None, max_length=200)
    scheduled_for: AwareDatetime | None = None
    enqueued_at: AwareDatetime | None = None
    execution_id: uuid.UUID | None = None
    #: enqueued by a backfill (recorded on the execution row; history shows it)
    backfill: bool = False
    #: the dispatch delay (ms) beat gave this fire for the trigger's jitter (recorded on the row)
    jitter_ms: int | None = Field(default=None, ge=0, le=2**62)  # any jitter a spec accepts

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            raise ValueError(
                f"unknown payload version {value} (this worker understands {sorted(SUPPORTED_VERSIONS)}); "
                "upgrade the worker"
            )
        return value

    @field_validator("scheduled_for", "enqueued_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    @model_validator(mode="after")
    def _fire_key(self) -> FirePayload:
        if self.trigger_id is not None and self.scheduled_for is None:
            raise ValueError("a trigger fire needs scheduled_for (the fire's idempotency key)")
        if (self.backfill or self.jitter_ms is not None) and self.trigger_id is None and self.execution_id is None:
            raise ValueError("backfill and jitter_ms belong to a trigger fire (give trigger_id)")
        return self

    def to_kwargs(self) -> dict[str, Any]:
        """The JSON kwargs a publisher sends (``None`` optionals left out where the lead allows)."""
        data: dict[str, Any] = {
            "workflow_id": str(self.workflow_id),
            "trigger_id": str(self.trigger_id) if self.trigger_id else None,
            "user_id": self.user_id,
            "scheduled_for": _iso(self.scheduled_for),
            "version": self.version,
        }
        if self.enqueued_at is not None:
            data["enqueued_at"] = _iso(self.enqueued_at)
        if self.execution_id is not None:
            data["execution_id"] = str(self.execution_id)
        # the version-2 fields only when set, so ordinary fires stay readable by version-1 workers
        if self.backfill:
            data["backfill"] = True
        if self.jitter_ms is not None:
            data["jitter_ms"] = self.jitter_ms
        if self.backfill or self.jitter_ms is not None:
            data["version"] = max(self.version, BACKFILL_VERSION)
        return data


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def describe_error(exc: ValidationError) -> str:
    """One line naming every bad field."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "payload"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
