"""Request and response bodies that are the API's own (the rest are ``views`` and ``WorkflowInput``)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInput
from ..views import ExecutionView, IsoTime, TriggerView


class ScheduledTrigger(TriggerView):
    """A trigger as created by ``POST /workflows/{id}/schedule``, with its coming fire times."""

    next_fire_times: list[IsoTime]


class FireTimes(BaseModel):
    model_config = ConfigDict(frozen=True)

    trigger_id: uuid.UUID
    fire_times: list[IsoTime]


class RunAccepted(BaseModel):
    model_config = ConfigDict(frozen=True)

    execution_id: uuid.UUID
    workflow_id: uuid.UUID
    status: str = "queued"


class ExecutionPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[ExecutionView]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next (older) page; null on the last page.")


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)


SCHEDULE_EXAMPLES: dict[str, Any] = {
    "cron": {
        "summary": "Quartz cron in a time zone",
        "value": {"name": "weekdays", "cron": "0 0 9 ? * MON-FRI", "tz": "Europe/Berlin"},
    },
    "interval": {"summary": "Every 5 minutes", "value": {"every": "5m"}},
    "once": {"summary": "Once", "value": {"name": "launch", "at": "2030-12-24T18:00:00+01:00"}},
    "stored": {
        "summary": "The stored spec form",
        "value": {"type": "cron", "expression": "0 */15 * * * ?", "timezone": "UTC", "misfire_policy": "skip"},
    },
}


def encode_cursor(created_at: datetime, execution_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{execution_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        created_at = datetime.fromisoformat(when)
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return created_at, uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor returned by this API (use next_cursor)", field="cursor") from None
