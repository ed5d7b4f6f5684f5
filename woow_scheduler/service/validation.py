"""Input validation of the use cases: names, workflow bodies, stored specs, and the one formatter
that turns a pydantic error into a one-line message naming the field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from ..enums import ConcurrencyPolicy
from ..triggers import TriggerSpec

#: A workflow's timeout must stay this far below the broker's visibility timeout (the time-limit
#: backstops and the final write run after the timeout itself).
VISIBILITY_MARGIN = 60

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")  # the whole name: use fullmatch
#: what the CLI reads as an id prefix: a name like this could capture another object's lookup
ID_LIKE_RE = re.compile(r"[0-9a-fA-F-]{6,36}")


SPEC_ADAPTER: TypeAdapter[TriggerSpec] = TypeAdapter(TriggerSpec)


def spec_from_stored(data: Mapping[str, Any]) -> TriggerSpec:
    """Rebuild a trigger spec from its stored JSON (already validated when it was written)."""
    return SPEC_ADAPTER.validate_python(dict(data))


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid {what} name: 1-200 characters, letters, digits and _ . : @ -, "
            "starting with a letter or digit"
        )
    try:
        uuid.UUID(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"'{value}' looks like an id; choose a name that is not a UUID")
    if ID_LIKE_RE.fullmatch(value):
        raise ValueError(f"'{value}' looks like an id prefix; use a letter outside a-f in the name")
    return value


class WorkflowInput(BaseModel):
    """What a workflow is made of (CLI options, workflow files and API bodies are validated by this)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(default="", max_length=10_000)
    steps: list[dict[str, Any]] = Field(default_factory=list)
    concurrency: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    max_retries: int = Field(default=0, ge=0, le=100)
    retry_delay: float = Field(default=15.0, ge=0, le=86_400)
    retry_backoff: bool = False
    timeout: float | None = Field(default=None, gt=0, le=7 * 86_400)
    max_queue_wait: float | None = Field(default=None, gt=0)
    owner_user_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "workflow")


WORKFLOW_FIELDS = set(WorkflowInput.model_fields)


def pydantic_error(exc: ValidationError, *, prefix: str = "") -> str:
    """The first problem of a pydantic error as one line: ``field: reason (got value)``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    path = ".".join(p for p in (prefix, loc) if p) or "input"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown field"
    if err["type"] == "missing":
        return f"{path}: is required"
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (str, int, float)) and repr(value) not in msg and str(value) not in msg:
        msg = f"{msg} (got {value!r})"
    return f"{path}: {msg}"


