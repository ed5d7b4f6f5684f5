"""Publishing ``execute_workflow``: what beat and ``woow workflow run`` call.

Every publish goes to ``settings.queue`` with ``shadow="workflow:<name>"`` (Flower and the worker
log show the workflow's name instead of the task's) and, when the workflow has a timeout, Celery
time limits just above it (the engine enforces the timeout itself; the soft limit is the backstop
and the hard limit the last resort, recorded as ``timed_out`` by the worker's main process).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from celery import Celery
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.utils.uuid import uuid as task_uuid

from ..db.session import Database
from ..enums import ExecutionStatus
from ..errors import StoreUnavailable
from ..settings import Settings
from .payload import TASK_EXECUTE, FirePayload, shadow_name

SOFT_LIMIT_GRACE = 5.0  # seconds after the workflow timeout before Celery's soft limit fires
HARD_LIMIT_GRACE = 30.0  # further seconds before the hard limit kills the pool process


class WorkflowLike(Protocol):
    """What :func:`enqueue_manual_run` reads from a workflow (the ORM ``Workflow`` fits)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def timeout(self) -> float | None: ...


def time_limits(timeout: float | None) -> dict[str, float]:
    """Celery ``soft_time_limit``/``time_limit`` for a workflow timeout (none without one)."""
    if not timeout:
        return {}
    soft = float(timeout) + SOFT_LIMIT_GRACE
    return {"soft_time_limit": soft, "time_limit": soft + HARD_LIMIT_GRACE}


def publish_options(settings: Settings, *, workflow_name: str, timeout: float | None = None) -> dict[str, Any]:
    """``apply_async`` options of a fire (also what a RedBeat entry's ``options`` should hold)."""
    return {"queue": settings.queue, "shadow": shadow_name(workflow_name), **time_limits(timeout)}


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def enqueue_fire(
    app: Celery,
    settings: Settings,
    *,
    workflow_id: uuid.UUID | str,
    workflow_name: str,
    trigger_id: uuid.UUID | str,
    user_id: str | None,
    scheduled_for: datetime | str,
    timeout: float | None = None,
    backfill: bool = False,
) -> AsyncResult:
    """Publish one trigger fire; ``scheduled_for`` (aware, UTC inside) is the fire's idempotency key.

    ``backfill``: the fire is enqueued by a backfill (its execution row, and history, say so)."""
    payload = FirePayload.model_validate(
        {
            "workflow_id": workflow_id,
            "trigger_id": trigger_id,
            "user_id": user_id,
            "scheduled_for": _aware(scheduled_for),
            "enqueued_at": datetime.now(UTC),
            "backfill": backfill,
        }
    )
    opts = publish_options(settings, workflow_name=workflow_name, timeout=timeout)
    return app.send_task(TASK_EXECUTE, kwargs=payload.to_kwargs(), **opts)


def enqueue_execution(
    app: Celery,
    settings: Settings,
    *,
    execution_id: uuid.UUID,
    workflow_id: uuid.UUID,
    workflow_name: str,
    trigger_id: uuid.UUID | None,
    user_id: str | None,
    scheduled_for: datetime | None,
    enqueued_at: datetime | None,
    timeout: float | None = None,
) -> AsyncResult:
    """Publish again the message of an existing ``queued``/``retrying`` execution whose own message
    was lost (the reaper); the worker claims that very row."""
    payload = FirePayload(
        workflow_id=workflow_id,
        trigger_id=trigger_id,
        user_id=user_id,
        scheduled_for=scheduled_for,
        execution_id=execution_id,
        enqueued_at=enqueued_at or datetime.now(UTC),
    )
    opts = publish_options(settings, workflow_name=workflow_name, timeout=timeout)
    return app.send_task(TASK_EXECUTE, kwargs=payload.to_kwargs(), **opts)


#: the options of a fire :class:`FireSender` handles itself; anything else goes through ``send_task``
_LEAN_OPTIONS = frozenset({"queue", "shadow", "soft_time_limit", "time_limit", "eta", "declare"})


class FireSender:
    """``app.send_task`` for beat's fires without its per-call lookups.

    The message is Celery's own (``amqp.create_task_message`` and ``amqp.send_task_message``, the
    two calls ``send_task`` makes): only what ``send_task`` looks up again for every message is
    done once per queue (the route) or skipped where it cannot apply to a fire published by beat
    (no parent task, no result subscription, no task-level options: a task registered in this
    process, or an option beyond a fire's, goes through ``send_task`` itself).  About half the
    cost of ``send_task`` per message; ``tests/scheduler/test_prepared.py`` holds the two to the same
    message.  ``retry=False``: meant for messages captured (``messaging.broker.capture``), which
    touch the broker only for the queue's declaration.
    """

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._routes: dict[tuple[str, Any], dict[str, Any]] = {}

    def send(self, producer: Any, name: str, kwargs: dict[str, Any], options: dict[str, Any], kwargsrepr: str) -> None:
        app = self.app
        if not options.keys() <= _LEAN_OPTIONS or app._tasks.get(name) is not None:
            app.send_task(
                name,
                args=[],
                kwargs=kwargs,
                producer=producer,
                ignore_result=True,
                argsrepr="()",
                kwargsrepr=kwargsrepr,
                **options,
            )
            return
        opts = dict(options)
        shadow = opts.pop("shadow", None)
        eta = opts.pop("eta", None)
        time_limit = opts.pop("time_limit", None)
        soft_time_limit = opts.pop("soft_time_limit", None)
        declare = opts.pop("declare", None)
        route_key = (name, opts.get("queue"))
        routed = self._routes.get(route_key)
        if routed is None:
            routed = self._routes[route_key] = app.amqp.router.route(opts, name, [], kwargs, None)
        options = dict(routed, argsrepr="()", kwargsrepr=kwargsrepr)
        if declare is not None:
            options["declare"] = declare
        task_id = task_uuid()
        amqp = app.amqp
        message = amqp.create_task_message(
            task_id, name, [], kwargs, None, eta, None, None, None, 0, None, None, None,
            app.thread_oid, time_limit, soft_time_limit, app.conf.task_send_sent_event, None, None, shadow, None,
            ignore_result=True, replaced_task_nesting=0, **options,
        )  # fmt: skip
        amqp.send_task_message(producer, name, message, retry=False, **options)


def enqueue_manual_run(
    app: Celery, db: Database, settings: Settings, *, workflow: WorkflowLike, user_id: str | None
) -> uuid.UUID:
    """Create a fresh ``queued`` execution (no trigger) and publish it; return the execution id.

    ``woow workflow run --wait`` then polls ``executions.status`` of that id until it is final.
    """
    from ..worker import history as h  # the one writer of execution rows

    now = datetime.now(UTC)
    with db.session() as session:
        execution_id = h.insert_execution(
            session.connection(),
            {
                "workflow_id": workflow.id,
                "user_id": user_id,
                "scheduled_for": now,
                "enqueued_at": now,
                "status": ExecutionStatus.QUEUED,
            },
        )
    payload = FirePayload(workflow_id=workflow.id, user_id=user_id, execution_id=execution_id, enqueued_at=now)
    opts = publish_options(settings, workflow_name=workflow.name, timeout=workflow.timeout)
    try:
        app.send_task(TASK_EXECUTE, kwargs=payload.to_kwargs(), **opts)
    except (KombuOperationalError, OSError) as exc:
        with db.session() as session:
            h.transition(
                session.connection(),
                execution_id,
                from_status=ExecutionStatus.QUEUED,
                values={
                    "status": ExecutionStatus.FAILED,
                    "finished_at": datetime.now(UTC),
                    "error": f"could not enqueue: {exc}",
                },
            )
        raise StoreUnavailable(f"broker: could not enqueue the run ({exc})") from exc
    return execution_id
