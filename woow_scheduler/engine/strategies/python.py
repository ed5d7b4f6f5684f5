"""``python``: call an allow-listed callable.

A callable is named either by an entry point of the ``woow_scheduler.callables`` group (installed
by a package) or by a ``module:function`` listed in ``settings.python_callables``.  Nothing else is
ever imported: a name that is in neither list is rejected when the workflow is saved.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from ...errors import InvalidWorkflow
from ...settings import Settings
from ..base import StepContext, StrategyConfig, TaskStrategy

CALLABLES_GROUP = "woow_scheduler.callables"


@cache
def _entry_point_names() -> frozenset[str]:
    return frozenset(ep.name for ep in entry_points(group=CALLABLES_GROUP))


def allowed_callables(settings: Settings) -> list[str]:
    """Every name the python strategy accepts: entry points, then the allow-list setting."""
    return sorted(_entry_point_names() | set(settings.python_callables))


def resolve_callable(name: str, settings: Settings) -> Callable[..., Any]:
    if name in settings.python_callables:
        module_name, _, attr = name.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    elif name in _entry_point_names():
        (ep,) = [ep for ep in entry_points(group=CALLABLES_GROUP) if ep.name == name][:1]
        obj = ep.load()
    else:
        raise InvalidWorkflow(f"callable '{name}' is not allowed")
    if not callable(obj):
        raise InvalidWorkflow(f"'{name}' is not callable")
    return obj  # type: ignore[no-any-return]


class PythonConfig(StrategyConfig):
    callable: str = Field(min_length=1, max_length=300)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    pass_context: bool = Field(default=False, description="call it as fn(ctx, *args, **kwargs)")

    @field_validator("callable")
    @classmethod
    def _allowed(cls, value: str, info: ValidationInfo) -> str:
        settings = (info.context or {}).get("settings")
        if not isinstance(settings, Settings):
            raise ValueError("cannot check the callable without settings")
        allowed = allowed_callables(settings)
        if value not in allowed:
            shown = ", ".join(allowed) or "none: add entry points or WOOW_PYTHON_CALLABLES"
            raise ValueError(f"'{value}' is not an allowed callable (allowed: {shown})")
        return value


class PythonStrategy(TaskStrategy):
    name = "python"
    Config = PythonConfig
    description = "Call an allow-listed Python callable; its return value is the output."
    privilege = "python"

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: PythonConfig = config
        fn = resolve_callable(cfg.callable, self.settings)
        if cfg.pass_context:
            return fn(ctx, *cfg.args, **cfg.kwargs)
        return fn(*cfg.args, **cfg.kwargs)
