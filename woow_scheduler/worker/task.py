"""The ``woow.execute_workflow`` task: claim the fire (:mod:`.claim`), run the steps under the lease,
record the outcome.

Registered on an app by :func:`register_tasks` (no global app, no decorator at import time).

- The run holds its lock as a lease with a fence (:mod:`.lock`): the runner checks the lease before
  every step and asks Redis once more before recording the outcome; a run that lost its lock stops
  before its next step and is recorded ``lock_lost`` (with why and who holds the lock now), never
  ``succeeded``.  Steps see the fence as ``ctx.fence``.
- Database or Redis unreachable before the run: the task retries with backoff (``db_retry_max``);
  nothing runs unrecorded.
- An outcome whose commit answer was lost is read back, not mistaken for a takeover.
- A run killed at Celery's hard time limit is recorded ``timed_out`` and its lock freed by the
  worker's main process only once the killed pool child is gone (:func:`mark_killed`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from ..engine.redact import redact
from ..engine.runner import RunOutcome, run_steps
from ..enums import ExecutionStatus
from ..errors import StoreUnavailable
from ..messaging.app import TASK_EXECUTE
from ..messaging.payload import FirePayload, describe_error
from ..settings import Settings
from . import backup
from . import history as h
from .claim import Claim, Delivery, Outcome, now, pinned_lock_key
from .context import settings_of, worker_context
from .lock import pinned_lock, run_script
from .logfmt import RunLog, kv

log = logging.getLogger("woow.worker")

STORE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    redis.ConnectionError,
    redis.TimeoutError,
    StoreUnavailable,
)
DB_BACKOFF_MAX = 30.0
RECORD_ATTEMPTS = 8  # in-process attempts to record an outcome whose run already happened


class FireRun(Delivery):
    """One delivery of ``execute_workflow``: its claim, its run and its record."""

    def execute(self) -> dict[str, Any]:
        try:
            return self._execute()
        finally:
            self.close_conn()

    def _execute(self) -> dict[str, Any]:
        try:
            wf, claim = self.claim_current()
        except STORE_ERRORS as exc:
            self.release_held()
            retries = int(getattr(self.task.request, "retries", 0) or 0)
            countdown = min(DB_BACKOFF_MAX, 2.0**retries)
            self.rlog.warning("store unavailable; fire retried later", error=_short(exc), retry_in=countdown)
            raise self.task.retry(
                countdown=countdown,
                max_retries=self.settings.db_retry_max,
                exc=StoreUnavailable(f"store unavailable: {_short(exc)}"),
            ) from None
        self.rlog = self.rlog.bind(execution_id=claim.execution_id)
        if wf is None:
            return {"outcome": claim.outcome.value, "reason": claim.reason}
        if claim.outcome is not Outcome.RUN:
            return {"outcome": claim.outcome.value, "execution_id": _s(claim.execution_id), "reason": claim.reason}
        return self.run(wf, claim)

    def run(self, wf: h.WorkflowDef, claim: Claim) -> dict[str, Any]:
        assert claim.lock is not None and claim.execution_id is not None
        lock = claim.lock
        rlog = self.rlog.bind(execution_id=claim.execution_id, scheduled_for=claim.scheduled_for)
        rlog.info(
            "execution started", attempt=claim.attempt, worker=self.ctx.hostname, task_id=self.task_id, fence=lock.fence
        )
        t0 = time.monotonic()
        try:
            with lock.kept_alive(self.settings.redis_url):
                outcome = run_steps(
                    wf.steps,
                    settings=self.settings,
                    workflow_id=wf.id,
                    workflow_name=wf.name,
                    execution_id=claim.execution_id,
                    scheduled_for=claim.scheduled_for,
                    user_id=claim.user_id,
                    attempt=claim.attempt,
                    timeout=wf.timeout,
                    workflow_timeout_errors=(SoftTimeLimitExceeded,),
                    fence=lock.fence,
                    lease=lock.check,
                )
                if outcome.status is not ExecutionStatus.LOCK_LOST:
                    lost = lock.confirm()  # the last step may have outlived the lease
                    if lost is not None:
                        outcome = RunOutcome(
                            ExecutionStatus.LOCK_LOST,
                            outcome.steps,
                            f"lock lost during the run: {lost}",
                            outcome.outputs,
                        )
                duration_ms = int((time.monotonic() - t0) * 1000)
                retry_in = self.retry_delay(wf, claim.attempt) if self.should_retry(wf, claim, outcome) else None
                recorded = self.record(claim, outcome, duration_ms, retry_in)
        finally:
            # the outcome is committed (or the run is failing): nothing waits on the answer
            self.release_held(wait=False)
        fields = {"attempt": claim.attempt, "duration_ms": duration_ms}
        if not recorded:
            rlog.warning("outcome not recorded: the execution was taken over by another worker", **fields)
            return {"outcome": "lost", "execution_id": str(claim.execution_id)}
        if retry_in is not None:
            rlog.warning("attempt failed; retrying", error=outcome.error, retry_in=retry_in, **fields)
            raise self.retry(
                countdown=retry_in,
                reason="failed",
                execution_id=claim.execution_id,
                enqueued_at=(now() + timedelta(seconds=retry_in)).isoformat(),
            )
        level = logging.INFO if outcome.status is ExecutionStatus.SUCCEEDED else logging.WARNING
        extra = {"error": outcome.error} if outcome.error else {}
        rlog.log(level, f"execution {outcome.status.value}", **fields, **extra)
        return {"outcome": outcome.status.value, "execution_id": str(claim.execution_id), "attempt": claim.attempt}

    @staticmethod
    def should_retry(wf: h.WorkflowDef, claim: Claim, outcome: RunOutcome) -> bool:
        return outcome.status is ExecutionStatus.FAILED and claim.attempt <= wf.max_retries

    @staticmethod
    def retry_delay(wf: h.WorkflowDef, attempt: int) -> float:
        delay = max(0.0, wf.retry_delay)
        if wf.retry_backoff:
            delay *= 2 ** max(0, attempt - 1)
        return min(delay, 24 * 3600.0)

    def record(self, claim: Claim, outcome: RunOutcome, duration_ms: int, retry_in: float | None) -> bool:
        """Write the outcome; the run already happened, so keep trying (lock renewed) before giving up.

        A commit whose answer was lost (the connection broke after PostgreSQL committed) makes the
        next attempt match no row: the row is then read back, and counts as recorded when it holds
        exactly this outcome under this run's token.
        """
        assert claim.lock is not None and claim.execution_id is not None
        status = ExecutionStatus.RETRYING if retry_in is not None else outcome.status
        values: dict[str, Any] = {
            "status": status,
            "finished_at": None if retry_in is not None else now(),
            "duration_ms": duration_ms,
            "steps": outcome.steps,
            "error": outcome.error,
            "fence": claim.lock.fence,  # a new one if the run took a vanished key back
            "due_at": now() + timedelta(seconds=retry_in) if retry_in is not None else None,
        }
        delay = 0.5
        ambiguous = False
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                done = bool(
                    self.sql(
                        h.transition,
                        claim.execution_id,
                        from_status=ExecutionStatus.RUNNING,
                        lock_token=claim.lock.token,
                        values=values,
                    )
                )
                if done or not ambiguous:
                    return done
                row = self.sql(h.get_execution, claim.execution_id)
                return row is not None and row.lock_token == claim.lock.token and row.status is status
            except STORE_ERRORS as exc:
                ambiguous = True
                if attempt == RECORD_ATTEMPTS:
                    self.rlog.error("outcome could not be recorded; giving up", error=_short(exc))
                    raise
                self.rlog.warning("outcome not recorded yet; retrying", error=_short(exc), retry_in=delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        return False  # pragma: no cover


def _s(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# -- the task -----------------------------------------------------------------------------------------


class ExecuteWorkflowTask(Task):  # type: ignore[misc]
    """Celery task class of ``woow.execute_workflow``; handles the hard time limit in the parent."""

    name = TASK_EXECUTE
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True  # history lives in PostgreSQL; `woow workflow run --wait` polls the row
    max_retries = None  # bounded by the code: db_retry_max, the workflow's max_retries, max_queue_wait
    typing = False

    def run(self, **kwargs: Any) -> dict[str, Any]:
        return execute_workflow(self, kwargs)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if isinstance(exc, TimeLimitExceeded):
            try:
                mark_killed(settings_of(self.app), kwargs or {}, task_id, str(exc))  # returns at once
            except Exception:  # never take the worker's main process down
                log.exception("could not record the hard time limit of task %s", task_id)


def execute_workflow(task: Task, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Body of the task (separate from the class so tests can call it with any task)."""
    settings = settings_of(task.app)
    try:
        payload = FirePayload.model_validate(kwargs)
    except ValidationError as exc:
        log.error(
            "payload rejected, fire dropped %s",
            kv(
                task_id=getattr(task.request, "id", None),
                error=describe_error(exc),
                kwargs=redact(kwargs, settings.redact_keys),
            ),
        )
        return {"outcome": Outcome.DROPPED.value, "reason": describe_error(exc)}
    return FireRun(task, worker_context(settings), payload).execute()


KILLED_POLL = 0.01  # seconds between looks at whether a killed run's process is gone


def mark_killed(settings: Settings, kwargs: dict[str, Any], task_id: str, error: str) -> threading.Thread | None:
    """A run killed at Celery's hard time limit: record it ``timed_out`` and free its lock, both only
    once the process that holds the lock is gone.

    Celery calls this in the worker's main process *before* billiard terminates the pool child
    (SIGTERM, up to 0.1 s, then SIGKILL; longer while the child is in uninterruptible sleep), so
    the child may still be in its step.  Freeing the lock now would let the next fire run beside
    it, and so would recording the row final now: a fire that finds a lock naming a finished
    execution takes it over as stale (:meth:`.claim.Delivery.acquire_held`).  So a daemon thread
    (the main process's event loop must not wait) does the work: :func:`settle_killed`.  Returns
    that thread (tests join it), or ``None`` for a payload that names no run.
    """
    try:
        payload = FirePayload.model_validate(kwargs)
    except ValidationError:
        return None
    if payload.execution_id is None and (payload.trigger_id is None or payload.scheduled_for is None):
        return None
    thread = threading.Thread(
        target=_settle_logged, args=(settings, payload, task_id, error), name="woow-killed-run", daemon=True
    )
    thread.start()
    return thread


def _settle_logged(settings: Settings, payload: FirePayload, task_id: str, error: str) -> None:
    try:
        settle_killed(settings, payload, task_id, error)
    except Exception:  # never take the worker's main process down
        log.exception("could not record the hard time limit of task %s", task_id)


def settle_killed(settings: Settings, payload: FirePayload, task_id: str, error: str) -> bool:
    """Wait until the killed run's lock holder is gone, then record the row and free the lock.

    The holder is the process named in the lock value (``<pid>@<node>``, read through
    :func:`.lock.pinned_lock`); it is gone when :meth:`.lock.LockValue.holder_dead` says so (its pid
    in this node gone, or a zombie), looked at every ``KILLED_POLL``.  Then the row becomes
    ``timed_out`` (guarded by status and token: an outcome the child recorded first stands) and the
    lock is deleted only if it still holds exactly the value read (``lua/release.lua``).

    Not seen gone within ``lock_ttl`` -- or never visible: a value naming no pid or another node --
    nothing is touched and one warning is logged: the lock runs out at its TTL once nobody renews
    it, and the reaper records the row ``failed``.  A run that no longer holds its lock (expired,
    taken) is recorded at once: there is no lock left to protect.  ``True`` when the row was recorded.
    """
    ctx = worker_context(settings)
    with ctx.engine.connect() as conn:
        if payload.execution_id is not None:
            row = h.get_execution(conn, payload.execution_id)
        elif payload.trigger_id is not None and payload.scheduled_for is not None:
            row = h.get_fire(conn, payload.trigger_id, payload.scheduled_for)
        else:
            return False
        if row is None or row.status is not ExecutionStatus.RUNNING or row.workflow_id != payload.workflow_id:
            return False
        wf = h.load_workflow(conn, row.workflow_id)
    rlog = RunLog(
        workflow=wf.name if wf else None,
        workflow_id=row.workflow_id,
        trigger_id=row.trigger_id,
        execution_id=row.id,
        scheduled_for=row.scheduled_for,
    )
    key = pinned_lock_key(ctx.keys, row, wf.concurrency if wf is not None else None)
    pinned = pinned_lock(ctx.redis, key, row.lock_token)
    release: tuple[str, str] | None = None  # (key, value) to delete once its holder is gone
    if key is not None and pinned is not None:
        value, held = pinned
        release = (key, value)
        deadline = time.monotonic() + settings.lock_ttl
        while not held.holder_dead():
            if time.monotonic() >= deadline:
                rlog.warning(
                    "killed run's process still holds its lock; lock left to its TTL, row to the reaper",
                    task_id=task_id,
                    key=key,
                    holder=value,
                    waited=settings.lock_ttl,
                )
                return False
            time.sleep(KILLED_POLL)
    try:
        with ctx.engine.connect() as conn:
            ok = h.transition(
                conn,
                row.id,
                from_status=ExecutionStatus.RUNNING,
                lock_token=row.lock_token,
                values={
                    "status": ExecutionStatus.TIMED_OUT,
                    "finished_at": now(),
                    "error": f"killed at the hard time limit ({error})",
                },
            )
    finally:
        if release is not None:
            # its holder is gone: nobody can still need this exact value (compare-and-delete)
            run_script(ctx.redis, "release", [release[0]], [release[1]])
    if ok:
        rlog.warning("execution timed_out (hard limit)", task_id=task_id)
    return ok


def register_tasks(app: Celery) -> None:
    """Register woow's tasks on ``app`` (idempotent), and the backup lock renewer of its pool
    children (:mod:`.backup`, started at ``worker_process_init``)."""
    backup.install(app, settings_of(app))
    if TASK_EXECUTE not in app.tasks:
        # a subclass per app: Celery binds the app on the task *class*
        cls = type("ExecuteWorkflowTask", (ExecuteWorkflowTask,), {"__module__": __name__})
        app.register_task(cls())
