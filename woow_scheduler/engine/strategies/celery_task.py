"""``celery_task``: send a named Celery task to a queue, optionally wait for its result.

Waiting blocks a worker slot: let the target task run on another queue (or other workers) than
``execute_workflow``, or a full pool can wait on itself.

Only tasks and queues an operator allow-lists (``WOOW_CELERY_TASK_NAMES``,
``WOOW_CELERY_TASK_QUEUES``) may be used, and only by owners with the ``celery_task`` privilege:
a message to woow's own tasks or queue could run another user's workflow.  The lists are checked
when the workflow is saved and again when the step runs (the config is validated at both times).
"""

from __future__ import annotations

import fnmatch
import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationInfo, field_validator

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


#: task names that are woow's own: never sendable from a step (whatever the allow-list says)
RESERVED_TASK_PREFIX = "woow."


def _settings_of(info: ValidationInfo) -> Settings:
    settings = (info.context or {}).get("settings")
    if not isinstance(settings, Settings):
        raise ValueError("cannot check the allow-list without settings")
    return settings


def task_allowed(name: str, settings: Settings) -> bool:
    if name.lower().startswith(RESERVED_TASK_PREFIX) or name.lower().startswith("celery."):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.celery_task_names)


def queue_allowed(queue: str, settings: Settings) -> bool:
    return queue != settings.queue and queue in settings.celery_task_queues


class CeleryTaskConfig(StrategyConfig):
    task: str = Field(min_length=1, max_length=300, description="registered Celery task name")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(
        default=None, min_length=1, max_length=200, description="default: the first allow-listed queue"
    )
    wait: bool = False
    wait_timeout: float = Field(default=60.0, gt=0, le=86_400)

    @field_validator("task")
    @classmethod
    def _task(cls, value: str, info: ValidationInfo) -> str:
        settings = _settings_of(info)
        if not task_allowed(value, settings):
            if value.lower().startswith((RESERVED_TASK_PREFIX, "celery.")):
                raise ValueError(f"'{value}' is a task of woow or Celery itself and can never be sent from a step")
            shown = ", ".join(settings.celery_task_names) or "none: an operator sets WOOW_CELERY_TASK_NAMES"
            raise ValueError(f"'{value}' is not an allowed task (allowed: {shown})")
        return value

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None, info: ValidationInfo) -> str | None:
        settings = _settings_of(info)
        if value is None:
            if not [q for q in settings.celery_task_queues if q != settings.queue]:
                raise ValueError("no queue is allowed (an operator sets WOOW_CELERY_TASK_QUEUES)")
            return value
        if not queue_allowed(value, settings):
            if value == settings.queue:
                raise ValueError(f"'{value}' is woow's own queue and can never be sent to from a step")
            shown = ", ".join(q for q in settings.celery_task_queues if q != settings.queue) or "none"
            raise ValueError(f"'{value}' is not an allowed queue (allowed: {shown})")
        return value


class CeleryTaskStrategy(TaskStrategy):
    name = "celery_task"
    Config = CeleryTaskConfig
    description = "Send an allow-listed Celery task to an allow-listed queue (optionally wait for its result)."
    privilege = "celery_task"

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: CeleryTaskConfig = config
        queue = cfg.queue or next((q for q in self.settings.celery_task_queues if q != self.settings.queue), None)
        # the config was validated against these settings; check again right before the publish
        if not task_allowed(cfg.task, self.settings) or queue is None or not queue_allowed(queue, self.settings):
            raise StepFailed(f"task {cfg.task} to queue {queue}: not allowed by WOOW_CELERY_TASK_NAMES/QUEUES")
        app = _producer(self.settings)
        keys = self.settings.redact_keys
        options: dict[str, Any] = {
            # what Flower and worker logs show: secrets masked
            "argsrepr": repr(redact(cfg.args, keys)),
            "kwargsrepr": repr(redact(cfg.kwargs, keys)),
        }
        options["queue"] = queue
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
