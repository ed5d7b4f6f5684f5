"""Runs a workflow's steps, in order, through their strategies.

Per step: the strategy is looked up and allowed by the settings, its config is validated again
(settings may have changed since the workflow was saved), it runs under a time limit (the smaller
of the step's ``timeout`` and what is left of the workflow's), and its output is made JSON, redacted
and capped at 16 KB.  A failing step ends the run unless it has ``continue_on_error``.

The result is a list of per-step records ``{name, type, status, started_at, finished_at,
duration_ms, output, error}`` and the run's status: succeeded, failed or timed_out.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Any, TypeVar

from pydantic import ValidationError

from .. import permissions
from ..enums import ExecutionStatus
from ..errors import Forbidden, InvalidWorkflow, StepFailed, StepTimeout
from ..settings import Settings
from .base import StepContext, TaskStrategy
from .redact import redact, scrub, scrub_any, secret_values
from .registry import StepSpec, available_strategies

log = logging.getLogger("woow.engine")

OUTPUT_CAP = 16 * 1024  # bytes of JSON kept per step output
ERROR_CAP = 4000  # characters of error text kept per step

STEP_SUCCEEDED = "succeeded"
STEP_FAILED = "failed"
STEP_TIMED_OUT = "timed_out"
STEP_SKIPPED = "skipped"

T = TypeVar("T")


@dataclass(frozen=True)
class RunOutcome:
    status: ExecutionStatus  # SUCCEEDED, FAILED or TIMED_OUT
    steps: list[dict[str, Any]]
    error: str | None = None  # names the failing step
    outputs: dict[str, Any] = field(default_factory=dict)


def cap_output(value: Any, limit: int = OUTPUT_CAP) -> Any:
    """``value`` as plain JSON; when its JSON is over ``limit`` bytes, a truncated preview instead."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError) as exc:  # e.g. circular references
        text = json.dumps(f"<output not JSON-serialisable: {exc}>")
    size = len(text.encode())
    if size <= limit:
        return json.loads(text)
    preview = text.encode()[: max(0, limit - 200)].decode(errors="ignore")
    return {"truncated": True, "size": size, "preview": preview}


def _now() -> datetime:
    return datetime.now(UTC)


# -- time limits ----------------------------------------------------------------------------------


@contextmanager
def _alarm(seconds: float, message: str, workflow: bool) -> Iterator[None]:
    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise StepTimeout(message, workflow=workflow)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_with_time_limit(fn: Callable[[], T], seconds: float | None, message: str, *, workflow: bool = False) -> T:
    """Call ``fn`` and raise :class:`StepTimeout` if it runs longer than ``seconds``.

    In a process's main thread (Celery prefork and solo pools) the call is interrupted with
    ``SIGALRM``.  Elsewhere it runs in a helper thread that is abandoned at the limit (Python cannot
    stop a thread; strategies with their own timeouts, like http and shell, still end).
    """
    if seconds is None:
        return fn()
    if seconds <= 0:
        raise StepTimeout(message, workflow=workflow)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(seconds, message, workflow):
            return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="woow-step", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        log.warning("step thread abandoned after %.3fs: %s", seconds, message)
        raise StepTimeout(message, workflow=workflow)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# -- the runner -----------------------------------------------------------------------------------


def _spec(raw: StepSpec | Mapping[str, Any]) -> StepSpec:
    return raw if isinstance(raw, StepSpec) else StepSpec.model_validate(dict(raw))


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, StepFailed | StepTimeout | InvalidWorkflow | Forbidden):
        text = f"{type(exc).__name__}: {text}"
    return text[:ERROR_CAP]


def _not_run(step: StepSpec) -> dict[str, Any]:
    return {
        "name": step.name,
        "type": step.type,
        "status": STEP_SKIPPED,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "output": None,
        "error": None,
    }


def run_steps(
    steps: Sequence[StepSpec | Mapping[str, Any]],
    *,
    settings: Settings,
    workflow_id: uuid.UUID,
    workflow_name: str,
    execution_id: uuid.UUID,
    scheduled_for: datetime | None = None,
    user_id: str | None = None,
    attempt: int = 1,
    timeout: float | None = None,
    workflow_timeout_errors: tuple[type[BaseException], ...] = (),
    logger: logging.Logger | None = None,
    strategies: Mapping[str, type[TaskStrategy]] | None = None,
    fence: int | None = None,
    lease: Callable[[], str | None] | None = None,
    privileges: frozenset[str] | Callable[[], frozenset[str]] | None = None,
) -> RunOutcome:
    """Run ``steps`` in order and report every step's result.

    ``timeout`` bounds the whole run (seconds); ``workflow_timeout_errors`` are exceptions that mean
    "the workflow's time is up" when raised inside a step (the worker passes Celery's
    ``SoftTimeLimitExceeded``).  Exceptions that are not ``Exception`` (KeyboardInterrupt,
    SystemExit) propagate.

    ``privileges`` are the workflow owner's (``permissions.PRIVILEGES``), or a function giving them;
    by default they are read from the database (the owner of ``workflow_id``) the first time a step
    whose strategy needs or checks a privilege is about to run.  A step that needs a privilege the
    owner no longer holds fails with the reason.
    """
    started = time.monotonic()
    deadline = started + timeout if timeout else None
    found = strategies if strategies is not None else available_strategies()
    step_logger = logger or logging.getLogger("woow.step")
    redact_keys = settings.redact_keys
    outputs: dict[str, Any] = {}
    results: list[dict[str, Any]] = []
    status = ExecutionStatus.SUCCEEDED
    error: str | None = None
    loaded: list[frozenset[str]] = []

    def owner_privileges() -> frozenset[str]:
        if not loaded:
            if isinstance(privileges, frozenset):
                loaded.append(privileges)
            elif privileges is not None:
                loaded.append(privileges())
            else:
                loaded.append(permissions.owner_privileges(settings, workflow_id))
        return loaded[0]

    specs: list[StepSpec] = []
    for i, raw in enumerate(steps):
        try:
            specs.append(_spec(raw))
        except ValidationError as exc:
            return RunOutcome(
                ExecutionStatus.FAILED, results, f"steps[{i}]: invalid step definition: {exc.errors()[0]['msg']}"
            )

    for index, step in enumerate(specs):
        lost = lease() if lease is not None else None
        if lost is not None:
            status, error = ExecutionStatus.LOCK_LOST, f"stopped before step '{step.name}': {lost}"
            results.extend(_not_run(rest) for rest in specs[index:])
            break
        record: dict[str, Any] = {"name": step.name, "type": step.type, "status": STEP_SUCCEEDED}
        t0 = time.monotonic()
        record["started_at"] = _now().isoformat()
        secrets = secret_values(step.config, redact_keys)
        output: Any = None
        step_error: str | None = None
        try:
            cls = found.get(step.type)
            if cls is None:
                raise InvalidWorkflow(f"unknown strategy '{step.type}' (installed: {', '.join(found)})")
            strategy = cls(settings)
            strategy.check_allowed()
            try:
                config = cls.Config.model_validate(step.config, context={"settings": settings})
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise InvalidWorkflow(f"config.{loc}: {err['msg']}" if loc else f"config: {err['msg']}") from None
            held: frozenset[str] = frozenset()
            if cls.privilege or cls.uses_privileges:
                held = owner_privileges()
                lacking = sorted(strategy.required_privileges(config) - held)
                if lacking:
                    raise Forbidden(
                        f"refused: the workflow's owner lacks the '{lacking[0]}' privilege "
                        f"({strategy.privilege_reason(config, lacking[0])})"
                    )
            ctx = StepContext(
                workflow_id=workflow_id,
                workflow_name=workflow_name,
                execution_id=execution_id,
                scheduled_for=scheduled_for,
                user_id=user_id,
                attempt=attempt,
                step_name=step.name,
                settings=settings,
                fence=fence,
                outputs=dict(outputs),
                logger=step_logger,
                privileges=held,
            )
            limit, whole = step.timeout, False
            if deadline is not None:
                left = deadline - time.monotonic()
                if limit is None or left <= limit:
                    limit, whole = left, True
            what = f"workflow timed out after {timeout or 0:g}s" if whole else f"timed out after {step.timeout or 0:g}s"
            output = call_with_time_limit(partial(strategy.run, config, ctx), limit, what, workflow=whole)
        except StepTimeout as exc:
            record["status"] = STEP_TIMED_OUT
            step_error = _error_text(exc)
            if exc.workflow:
                status = ExecutionStatus.TIMED_OUT
        except workflow_timeout_errors as exc:
            record["status"] = STEP_TIMED_OUT
            step_error = f"workflow timed out ({type(exc).__name__})"
            status = ExecutionStatus.TIMED_OUT
        except StepFailed as exc:
            record["status"] = STEP_FAILED
            step_error = _error_text(exc)
            output = exc.output
        except Exception as exc:
            record["status"] = STEP_FAILED
            step_error = _error_text(exc)
            step_logger.debug("step %s raised", step.name, exc_info=True)
        finished = time.monotonic()
        record["finished_at"] = _now().isoformat()
        record["duration_ms"] = int((finished - t0) * 1000)
        stored = cap_output(scrub_any(redact(output, redact_keys), secrets)) if output is not None else None
        record["output"] = stored
        record["error"] = scrub(step_error, secrets) if step_error else None
        results.append(record)
        if record["status"] == STEP_SUCCEEDED:
            outputs[step.name] = stored
            continue
        if status is ExecutionStatus.TIMED_OUT:
            error = f"step '{step.name}' ({step.type}): {record['error']}"
        elif step.continue_on_error:
            outputs[step.name] = stored
            continue
        else:
            status = ExecutionStatus.FAILED
            error = f"step '{step.name}' ({step.type}) failed: {record['error']}"
        results.extend(_not_run(rest) for rest in specs[index + 1 :])
        break
    return RunOutcome(status, results, error, outputs)
