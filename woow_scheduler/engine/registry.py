"""Finds strategies (built-ins + the ``woow_scheduler.strategies`` entry points) and validates steps."""

from __future__ import annotations

import json
import logging
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InvalidWorkflow
from ..settings import Settings
from .base import TaskStrategy
from .strategies.basic import LogStrategy, SleepStrategy
from .strategies.celery_task import CeleryTaskStrategy
from .strategies.http import HttpStrategy
from .strategies.python import PythonStrategy
from .strategies.shell import ShellStrategy

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "woow_scheduler.strategies"

BUILTINS: tuple[type[TaskStrategy], ...] = (
    LogStrategy,
    SleepStrategy,
    HttpStrategy,
    PythonStrategy,
    ShellStrategy,
    CeleryTaskStrategy,
)


class StepSpec(BaseModel):
    """One step of a workflow as stored in ``workflows.steps``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    type: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)
    continue_on_error: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.strip() != value or any(c in value for c in "\n\r\t"):
            raise ValueError(f"'{value}' must not have surrounding spaces or control characters")
        return value


@cache
def _entry_point_strategies() -> tuple[type[TaskStrategy], ...]:
    found: list[type[TaskStrategy]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception:  # a broken plugin must not take the worker down
            log.exception("strategy entry point %r could not be loaded", ep.name)
            continue
        if isinstance(obj, type) and issubclass(obj, TaskStrategy):
            found.append(obj)
        else:
            log.error("strategy entry point %r is not a TaskStrategy subclass", ep.name)
    return tuple(found)


def available_strategies() -> dict[str, type[TaskStrategy]]:
    """Every installed strategy by name; entry points cannot shadow a built-in."""
    result = {cls.name: cls for cls in _entry_point_strategies()}
    result.update({cls.name: cls for cls in BUILTINS})
    return dict(sorted(result.items()))


def _pydantic_message(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    path = f"{prefix}.{loc}" if loc else prefix
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "is required"
    return f"{path}: {msg}"


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str).encode())
    except (TypeError, ValueError, RecursionError):
        return 1 << 62  # not JSON: larger than any limit


def validate_steps(steps: Any, settings: Settings) -> list[dict[str, Any]]:
    """Validate a list of steps (type known, config valid, names unique); return them normalised."""
    if not isinstance(steps, list):
        raise InvalidWorkflow("steps: must be a list of {name, type, config} objects", field="steps")
    if len(steps) > settings.max_steps:
        raise InvalidWorkflow(
            f"steps: {len(steps)} steps, at most {settings.max_steps} are allowed (WOOW_MAX_STEPS)", field="steps"
        )
    strategies = available_strategies()
    seen: set[str] = set()
    normalised: list[dict[str, Any]] = []
    for i, raw in enumerate(steps):
        prefix = f"steps[{i}]"
        if not isinstance(raw, dict):
            raise InvalidWorkflow(f"{prefix}: must be an object with name, type and config", field=prefix)
        size = _json_size(raw.get("config"))
        if size > settings.max_step_config_bytes:
            raise InvalidWorkflow(
                f"{prefix}.config: {size} bytes of JSON, at most {settings.max_step_config_bytes} are allowed "
                "(WOOW_MAX_STEP_CONFIG_BYTES)",
                field=f"{prefix}.config",
            )
        try:
            step = StepSpec.model_validate(raw)
        except ValidationError as exc:
            raise InvalidWorkflow(_pydantic_message(exc, prefix), field=prefix) from None
        if step.name in seen:
            raise InvalidWorkflow(f"{prefix}.name: '{step.name}' is used by an earlier step", field=prefix)
        seen.add(step.name)
        cls = strategies.get(step.type)
        if cls is None:
            raise InvalidWorkflow(
                f"{prefix}.type: unknown strategy '{step.type}' (installed: {', '.join(strategies)})",
                field=f"{prefix}.type",
            )
        strategy = cls(settings)
        try:
            strategy.check_allowed()
        except InvalidWorkflow as exc:
            raise InvalidWorkflow(f"{prefix}.type: {exc}", field=f"{prefix}.type") from None
        try:
            # the settings are in the validation context: a config can check them (python allow-list)
            config = cls.Config.model_validate(step.config, context={"settings": settings})
        except ValidationError as exc:
            raise InvalidWorkflow(_pydantic_message(exc, f"{prefix}.config"), field=f"{prefix}.config") from None
        data = step.model_dump()
        data["config"] = config.model_dump(mode="json", exclude_unset=True)
        normalised.append(data)
    return normalised
