"""Publishing ``execute_workflow``: what beat and ``woow workflow run`` call.

Every publish goes to ``settings.queue`` with ``shadow="workflow:<name>"`` (Flower and the worker
log show the workflow's name instead of the task's) and, when the workflow has a timeout, Celery
time limits just above it (the engine enforces the timeout itself; the soft limit is the backstop
and the hard limit the last resort, recorded as ``timed_out`` by the worker's main process).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
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
from .broker import Prepared
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


#: What a :class:`FireTemplate` leaves open, in the order of its values: the task id (also root and
#: correlation id), kombu's delivery tag, the base64 body, then the fields a caller may open by
#: building the message with their mark (:data:`MARKS`) in place of the value.
FIELDS = (
    "task_id",
    "delivery_tag",
    "body",
    "scheduled_for",
    "enqueued_at",
    "workflow_id",
    "trigger_id",
    "user_id",
    "shadow",
)
#: the mark standing for each field while a template's message is built
MARKS = {name: f"@@woow-{name}@@" for name in FIELDS}
_SLOT = {mark: n for n, mark in enumerate(MARKS.values())}
_MARK_RE = re.compile("(" + "|".join(re.escape(m) for m in _SLOT) + ")")
#: a value that reads the same in JSON and in a Python repr once quoted: printable ASCII without quotes or backslash
_PLAIN = re.compile(r"[ !#-&(-\[\]-~]*")


def plain(value: Any) -> bool:
    """Whether ``value`` may fill an open field of a :class:`FireTemplate` (a string whose JSON and
    repr forms are itself between quotes)."""
    return isinstance(value, str) and _PLAIN.fullmatch(value) is not None and "@@woow-" not in value


class FireTemplate:
    """Fire messages with their per-fire values left open, made from one message Celery built.

    Celery and kombu build one message (``build``, a publish captured into ``sink``) with marks
    (:data:`MARKS`) in place of the fields to leave open: always the fire's ``scheduled_for`` and
    ``enqueued_at``, and, to share one template between triggers, their ``workflow_id``,
    ``trigger_id``, ``user_id`` and ``shadow``.  The template keeps that message's bytes and the
    places of the marks (in the body and in ``kwargsrepr``), of the task id (also root and
    correlation id) and of kombu's delivery tag (fresh ``uuid4`` strings for every message, as Celery
    and kombu make them), and of the base64 body.  :meth:`render` fills them in: the bytes Celery
    would have built for that fire (``tests/scheduler/test_prepared.py`` compares them byte for
    byte), in microseconds instead of Celery's and kombu's tens.  Only :func:`plain` values may fill
    an open field (their JSON and repr forms need no escaping).  :meth:`build` refuses (``None``)
    a message it cannot take apart and put back together exactly (another serializer or body
    encoding, not one message): the caller builds those the usual way.
    """

    __slots__ = ("_body", "_envelope", "_key")

    def __init__(self, key: str, envelope: tuple[tuple[str, int], ...], body: tuple[tuple[str, int], ...]) -> None:
        self._key = key
        self._envelope = envelope
        self._body = body

    @classmethod
    def build(
        cls, build: Callable[[], None], sink: list[Prepared], intern: dict[str, str] | None = None
    ) -> FireTemplate | None:
        before = len(sink)
        build()
        made = sink[before:]
        del sink[before:]
        if len(made) != 1 or len(made[0]) != 1:
            return None
        ((name, args),) = made[0]
        if name != "lpush" or len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
            return None
        key, raw = args
        try:
            msg = json.loads(raw)
            props = msg["properties"]
            task_id, tag, body = msg["headers"]["id"], props["delivery_tag"], msg["body"]
            if props.get("body_encoding") != "base64" or msg.get("content-encoding") != "utf-8":
                return None
            text = base64.b64decode(body, validate=True).decode()
        except (ValueError, KeyError, TypeError):
            return None
        if not all(isinstance(v, str) and v for v in (task_id, tag, body)) or raw.count(body) != 1:
            return None
        marks = MARKS
        shell = raw.replace(body, marks["body"]).replace(task_id, marks["task_id"]).replace(tag, marks["delivery_tag"])
        pieces = intern if intern is not None else {}
        template = cls(key, _parts(shell, pieces), _parts(text, pieces))
        # the template must give back the very bytes it was made of
        values = list(marks.values())
        values[:2] = task_id, tag
        if template._render(values) != made[0]:
            return None
        return template

    def render(
        self,
        scheduled_for: str,
        enqueued_at: str,
        workflow_id: str = "",
        trigger_id: str = "",
        user_id: str = "",
        shadow: str = "",
    ) -> Prepared:
        """The message of one fire (fresh task id and delivery tag); the trigger's fields fill the
        template's open ones (each must be :func:`plain`)."""
        values = [str(uuid.uuid4()), str(uuid.uuid4()), "", scheduled_for, enqueued_at]
        values += (workflow_id, trigger_id, user_id, shadow)
        return self._render(values)

    def _render(self, values: list[str]) -> Prepared:
        values[2] = base64.b64encode(_fill(self._body, values).encode()).decode()
        return (("lpush", (self._key, _fill(self._envelope, values))),)


def _parts(text: str, intern: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """``text`` as (literal, slot) pairs (slot -1: none), the literals shared through ``intern``."""
    split = _MARK_RE.split(text)
    out: list[tuple[str, int]] = []
    for i in range(0, len(split), 2):
        literal = split[i]
        literal = intern.setdefault(literal, literal)
        out.append((literal, _SLOT[split[i + 1]] if i + 1 < len(split) else -1))
    return tuple(out)


def _fill(parts: tuple[tuple[str, int], ...], values: list[str]) -> str:
    out: list[str] = []
    for literal, slot in parts:
        out.append(literal)
        if slot >= 0:
            out.append(values[slot])
    return "".join(out)


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
