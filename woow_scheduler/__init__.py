"""woow-scheduler: Quartz-style workflow scheduling on Celery.

PostgreSQL holds the truth (workflows, triggers, executions), RedBeat in Redis holds the
live beat schedule, Celery beat fires and Celery workers execute.  ``docs/architecture.md``
draws the packages and the path of one fire through them.

The public API, importable from here without loading Celery (each name is imported on first use)::

    from woow_scheduler import Settings, load_settings, Service, WoowError, TaskStrategy
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .engine.base import StepContext, StrategyConfig, TaskStrategy
    from .errors import WoowError
    from .service import Service
    from .settings import Settings, load_settings

#: public name -> the module that defines it
_EXPORTS = {
    "Settings": ".settings",
    "load_settings": ".settings",
    "Service": ".service",
    "WoowError": ".errors",
    "TaskStrategy": ".engine.base",
    "StrategyConfig": ".engine.base",
    "StepContext": ".engine.base",
}

__all__ = [
    "Service",
    "Settings",
    "StepContext",
    "StrategyConfig",
    "TaskStrategy",
    "WoowError",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'woow_scheduler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
