"""Structured one-line log records for executions.

Each record reads ``<event> workflow=<name> workflow_id=<uuid> trigger_id=<uuid> execution_id=<uuid>
scheduled_for=<iso> [more=...]`` and carries the same fields in ``extra`` for JSON formatters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger("woow.worker")


def _fmt(value: Any) -> str:
    text = "-" if value is None else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def kv(**fields: Any) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())


@dataclass(frozen=True)
class RunLog:
    """Log records bound to one fire/execution."""

    workflow: str | None = None
    workflow_id: Any = None
    trigger_id: Any = None
    execution_id: Any = None
    scheduled_for: Any = None
    logger: logging.Logger = field(default=log, compare=False)

    def bind(self, **changes: Any) -> RunLog:
        return replace(self, **changes)

    def _fields(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "workflow_id": self.workflow_id,
            "trigger_id": self.trigger_id,
            "execution_id": self.execution_id,
            "scheduled_for": self.scheduled_for.isoformat()
            if hasattr(self.scheduled_for, "isoformat")
            else self.scheduled_for,
        }

    def log(self, level: int, event: str, **more: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        fields = self._fields()
        line = kv(**fields, **more)
        extra = {k: (str(v) if v is not None else None) for k, v in fields.items()}
        self.logger.log(level, "%s %s", event, line, extra=extra)

    def debug(self, event: str, **more: Any) -> None:
        self.log(logging.DEBUG, event, **more)

    def info(self, event: str, **more: Any) -> None:
        self.log(logging.INFO, event, **more)

    def warning(self, event: str, **more: Any) -> None:
        self.log(logging.WARNING, event, **more)

    def error(self, event: str, **more: Any) -> None:
        self.log(logging.ERROR, event, **more)
