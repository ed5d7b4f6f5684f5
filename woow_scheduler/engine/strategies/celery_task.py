"""``celery_task``: send a named Celery task to a queue, optionally wait for its result.

Waiting blocks a worker slot: let the target task run on another queue (or other workers) than
``execute_workflow``, or a full pool can wait on itself.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ...errors import StepFailed
from ...settings import Settings
from ..base import StepContext, StrategyConfig, TaskStrategy
from ..redact import redact

if TYPE_CHECKING:  # Celery is loaded on first use, so validating a workflow (the service) does not load it
    from celery import Celery

_apps: dict[int, tuple[Settings, Celery]] = {}
_guard = threading.Lock()


def _producer(settings: Settings) -> Celery:
    """A publishing-only app on the same broker/backend (cached per settings object)."""
    from ...messaging.app import create_app

    with _guard:
        found = _apps.get(id(settings))
        if found is None or found[0] is not settings:
            found = (settings, create_app(settings, main="woow-producer"))
            _apps[id(settings)] = found
        return found[1]


class CeleryTaskConfig(StrategyConfig):
    task: str = Field(min_length=1, max_length=300, description="registered Celery task name")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, min_length=1, max_length=200)
    wait: bool = False
    wait_timeout: float = Field(default=60.0, gt=0, le=86_400)


class CeleryTaskStrategy(TaskStrategy):
    name = "celery_task"
    Config = CeleryTaskConfig
    description = "Send a Celery task (optionally wait for its result)."

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: CeleryTaskConfig = config
        app = _producer(self.settings)
        keys = self.settings.redact_keys
        options: dict[str, Any] = {
            # what Flower and worker logs show: secrets masked
            "argsrepr": repr(redact(cfg.args, keys)),
            "kwargsrepr": repr(redact(cfg.kwargs, keys)),
        }
        if cfg.queue:
            options["queue"] = cfg.queue
        result = app.send_task(cfg.task, args=cfg.args, kwargs=cfg.kwargs, **options)
        output: dict[str, Any] = {"task_id": result.id, "task": cfg.task}
        if not cfg.wait:
            return output
        from celery.exceptions import TimeoutError as CeleryTimeoutError

        try:
            value = result.get(timeout=cfg.wait_timeout, propagate=False, disable_sync_subtasks=False)
        except CeleryTimeoutError:
            raise StepFailed(
                f"task {cfg.task} gave no result within {cfg.wait_timeout:g}s", output=output | {"state": result.state}
            ) from None
        output["state"] = result.state
        if result.failed():
            output["error"] = repr(value)
            raise StepFailed(f"task {cfg.task} failed: {value!r}", output=output)
        output["result"] = value
        return output
