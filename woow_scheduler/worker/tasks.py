"""The ``woow.execute_workflow`` task: claim the fire, take the lock, run the steps, record the outcome.

Registered on an app by :func:`register_tasks` (no global app, no decorator at import time).

Claim rules (every write is conditional, so concurrent deliveries of one fire cannot both win):

- new fire: take the lock first (owner = a fresh execution id), then ``INSERT ... ON CONFLICT DO
  NOTHING`` the row as ``running``.  If the fire exists already, the existing row decides:
  finished -> duplicate, dropped; running with a live lock -> duplicate, dropped; running with an
  expired lock (its worker died) -> taken over; queued/retrying -> claimed.
- lock held: ``forbid`` -> the fire is recorded ``skipped`` naming the holder; ``queue`` -> a
  ``queued`` row is written and the task retries with backoff (earlier fires first) until the lock
  frees or ``max_queue_wait`` passes (then ``skipped``); ``allow`` takes no workflow lock (a
  per-execution lease still proves the run is alive).
- database or Redis unreachable before the run: the task retries with backoff (``db_retry_max``);
  nothing runs unrecorded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import Retry, SoftTimeLimitExceeded, TimeLimitExceeded
from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ..db.session import Database
from ..engine.redact import redact
from ..engine.runner import RunOutcome, run_steps
from ..enums import ConcurrencyPolicy, ExecutionStatus
from ..errors import StoreUnavailable
from ..keys import Keys
from ..messaging.app import TASK_EXECUTE
from ..messaging.payload import FirePayload, describe_error
from ..redis_store import make_redis
from ..settings import Settings
from . import history as h
from .lock import WorkflowLock, execution_lease_key, run_script, split_value
from .logfmt import RunLog, kv

log = logging.getLogger("woow.worker")

STORE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    redis.ConnectionError,
    redis.TimeoutError,
    StoreUnavailable,
)
QUEUE_POLL_MIN = 0.2  # first wait of a 'queue' fire for the lock (seconds), doubled up to QUEUE_POLL_MAX
QUEUE_POLL_MAX = 2.0
DB_BACKOFF_MAX = 30.0
RECORD_ATTEMPTS = 8  # in-process attempts to record an outcome whose run already happened
DEFINITION_MAX_AGE = 60.0  # seconds a kept workflow definition is trusted before it is read again
DEFINITION_CACHE_SIZE = 4096
STALE_CLAIMS = 5  # claims in a row that may find the definition changed under them


class WorkflowCache:
    """Workflow definitions a worker process keeps between fires.

    Never trusted blindly: a scheduled fire is inserted only if the workflow's ``updated_at`` still
    equals the kept one (:func:`history.insert_fire_checked`), so an edit takes effect on the very
    next claim; manual runs, retries and queued fires always read the definition afresh.  Entries
    are dropped after :data:`DEFINITION_MAX_AGE` seconds in case a row was edited by hand without
    touching ``updated_at``.
    """

    def __init__(self, size: int = DEFINITION_CACHE_SIZE, max_age: float = DEFINITION_MAX_AGE) -> None:
        self.size = size
        self.max_age = max_age
        self._items: OrderedDict[uuid.UUID, tuple[h.WorkflowDef, float]] = OrderedDict()

    def get(self, workflow_id: uuid.UUID) -> h.WorkflowDef | None:
        found = self._items.get(workflow_id)
        if found is None:
            return None
        if time.monotonic() - found[1] > self.max_age:
            del self._items[workflow_id]
            return None
        return found[0]

    def put(self, wf: h.WorkflowDef) -> None:
        self._items[wf.id] = (wf, time.monotonic())
        self._items.move_to_end(wf.id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def discard(self, workflow_id: uuid.UUID) -> None:
        self._items.pop(workflow_id, None)


class _DefinitionChanged(Exception):
    """The workflow's definition changed (or it was deleted) after this worker read it."""

    def __init__(self, fresh: h.WorkflowDef | None) -> None:
        super().__init__("workflow definition changed")
        self.fresh = fresh


# -- per-process context ----------------------------------------------------------------------------


@dataclass
class WorkerContext:
    """Stores of one worker process, built lazily in that process (never shared across a fork)."""

    pid: int
    settings: Settings
    db: Database
    redis: redis.Redis
    keys: Keys
    hostname: str
    workflows: WorkflowCache = field(default_factory=WorkflowCache)

    @property
    def engine(self) -> Engine:
        """The worker's engine (autocommit for the whole pool)."""
        return self.db.engine

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()


_contexts: dict[int, WorkerContext] = {}


def worker_context(settings: Settings) -> WorkerContext:
    """This process's context for ``settings`` (rebuilt after a fork)."""
    pid = os.getpid()
    key = id(settings)
    ctx = _contexts.get(key)
    if ctx is None or ctx.pid != pid:
        # pre-ping would add a round trip to every execution; a dead pooled connection raises a
        # disconnect error instead, which invalidates the pool and retries the task
        # autocommit for the whole pool (every statement here is its own transaction): set per
        # checkout instead, it cost an isolation-level switch and reset on every statement
        db = Database(settings.database_url, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
        ctx = WorkerContext(
            pid=pid,
            settings=settings,
            db=db,
            redis=make_redis(settings.redis_url),
            keys=Keys(settings.key_prefix),
            hostname=f"{socket.gethostname()}:{pid}",
        )
        _contexts[key] = ctx
        if settings.visibility_timeout <= 2 * settings.lock_ttl:
            log.warning(
                "visibility_timeout (%ss) should be well above lock_ttl (%ss): a redelivered fire could "
                "find its dead run's lock still alive and be dropped",
                settings.visibility_timeout,
                settings.lock_ttl,
            )
    return ctx


def settings_of(app: Celery) -> Settings:
    settings = getattr(app.conf, "woow_settings", None)
    if not isinstance(settings, Settings):
        raise RuntimeError("this Celery app was not built by woow_scheduler (app.conf.woow_settings missing)")
    return settings


# -- claim ------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    RUN = "run"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    DROPPED = "dropped"


@dataclass
class Claim:
    outcome: Outcome
    execution_id: uuid.UUID | None = None
    attempt: int = 0
    lock: WorkflowLock | None = None
    reason: str = ""
    scheduled_for: datetime | None = None
    user_id: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class FireRun:
    """One delivery of ``execute_workflow``."""

    def __init__(self, task: Task, ctx: WorkerContext, payload: FirePayload) -> None:
        self.task = task
        self.ctx = ctx
        self.settings = ctx.settings
        self.p = payload
        self.task_id: str | None = getattr(task.request, "id", None)
        self.rlog = RunLog(
            workflow_id=payload.workflow_id,
            trigger_id=payload.trigger_id,
            execution_id=payload.execution_id,
            scheduled_for=payload.scheduled_for,
        )
        self.held: WorkflowLock | None = None
        self._conn: Connection | None = None
        # Prefork children and the solo pool run one task at a time on their main thread: such a
        # run keeps one pooled connection from claim to record (a checkout per statement cost about
        # a seventh of an execution's client CPU).  Thread and greenlet pools, where many runs share
        # a process's pool, hand the connection back after every statement.
        self._keep_conn = threading.current_thread() is threading.main_thread()

    # .. helpers ..
    def sql(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self._conn if self._conn is not None else self.ctx.engine.connect()
        self._conn = None
        try:
            result = fn(conn, *args, **kwargs)
        except BaseException:
            conn.close()  # a connection that failed goes back (invalidated if it broke), never kept
            raise
        if self._keep_conn:
            self._conn = conn
        else:
            conn.close()
        return result

    def close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def new_lock(self, wf: h.WorkflowDef, execution_id: uuid.UUID) -> WorkflowLock:
        key = (
            execution_lease_key(self.ctx.keys, execution_id)
            if wf.concurrency is ConcurrencyPolicy.ALLOW
            else self.ctx.keys.workflow_lock(wf.id)
        )
        return WorkflowLock(self.ctx.redis, key, self.settings.lock_ttl, owner=str(execution_id))

    def running_values(self, lock: WorkflowLock, attempt: int) -> dict[str, Any]:
        return {
            "status": ExecutionStatus.RUNNING,
            "attempt": attempt,
            "started_at": _now(),
            "finished_at": None,
            "duration_ms": None,
            "worker": self.ctx.hostname,
            "celery_task_id": self.task_id,
            "lock_token": lock.token,
        }

    def retry(self, *, countdown: float, reason: str, **changes: Any) -> Retry:
        kwargs = self.p.to_kwargs()
        kwargs.update({k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in changes.items()})
        return self.task.retry(kwargs=kwargs, countdown=max(0.0, countdown), max_retries=None, exc=None)

    # .. entry ..
    def load(self) -> h.WorkflowDef | None:
        """The workflow's definition read now (and kept for the next scheduled fires)."""
        wf: h.WorkflowDef | None = self.sql(h.load_workflow, self.p.workflow_id)
        if wf is None:
            self.ctx.workflows.discard(self.p.workflow_id)
        else:
            self.ctx.workflows.put(wf)
        return wf

    def definition(self) -> h.WorkflowDef | None:
        """A scheduled fire may start from the kept definition (its claim checks it is current)."""
        if self.p.trigger_id is not None and self.p.execution_id is None:
            kept = self.ctx.workflows.get(self.p.workflow_id)
            if kept is not None:
                return kept
        return self.load()

    def execute(self) -> dict[str, Any]:
        try:
            return self._execute()
        finally:
            self.close_conn()

    def _execute(self) -> dict[str, Any]:
        try:
            wf = self.definition()
            for _ in range(STALE_CLAIMS):
                if wf is None:
                    self.rlog.error("fire dropped: workflow no longer exists")
                    return {"outcome": Outcome.DROPPED.value, "reason": "workflow not found"}
                self.rlog = self.rlog.bind(workflow=wf.name)
                try:
                    claim = self.claim(wf)
                    break
                except _DefinitionChanged as changed:
                    wf = changed.fresh
            else:
                raise StoreUnavailable(f"workflow {self.p.workflow_id} kept changing while its fire was claimed")
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
        if claim.outcome is not Outcome.RUN:
            return {"outcome": claim.outcome.value, "execution_id": _s(claim.execution_id), "reason": claim.reason}
        return self.run(wf, claim)

    def release_held(self, *, wait: bool = True) -> None:
        lock, self.held = self.held, None
        if lock is not None:
            with contextlib.suppress(redis.RedisError):  # it expires on its own
                if wait:
                    lock.release()
                else:
                    lock.release_nowait()

    def claim(self, wf: h.WorkflowDef) -> Claim:
        p = self.p
        if p.execution_id is not None:
            row = self.sql(h.get_execution, p.execution_id)
            return self.claim_existing(wf, row)
        if p.trigger_id is None:  # ad-hoc run without a pre-created row
            new_id = self.sql(
                h.insert_execution,
                {"workflow_id": wf.id, "user_id": p.user_id, "scheduled_for": _now(), "enqueued_at": p.enqueued_at},
            )
            return self.claim_existing(wf, self.sql(h.get_execution, new_id))
        return self.claim_new_fire(wf)

    def fire_values(self, new_id: uuid.UUID, wf: h.WorkflowDef) -> dict[str, Any]:
        return {
            "id": new_id,
            "workflow_id": wf.id,
            "trigger_id": self.p.trigger_id,
            "user_id": self.p.user_id,
            "scheduled_for": self.p.scheduled_for,
            "enqueued_at": self.p.enqueued_at,
        }

    def existing_fire(self, wf: h.WorkflowDef) -> Claim:
        assert self.p.trigger_id is not None and self.p.scheduled_for is not None
        return self.claim_existing(wf, self.sql(h.get_fire, self.p.trigger_id, self.p.scheduled_for))

    def claim_new_fire(self, wf: h.WorkflowDef) -> Claim:
        p = self.p
        assert p.scheduled_for is not None
        new_id = uuid.uuid4()
        lock = self.new_lock(wf, new_id)
        if lock.acquire():
            self.held = lock
            if wf.concurrency is ConcurrencyPolicy.QUEUE:
                earlier = self.earlier(wf, None, p.scheduled_for)
                if earlier is not None:
                    self.release_held()
                    return self.wait_new(wf, new_id, f"earlier queued execution {earlier}")
            values = self.fire_values(new_id, wf) | self.running_values(lock, 1)
            if self.insert_new(wf, values):
                return Claim(Outcome.RUN, new_id, 1, lock, scheduled_for=p.scheduled_for, user_id=p.user_id)
            return self.existing_fire(wf)
        holder = _owner(lock.holder())
        if wf.concurrency is ConcurrencyPolicy.QUEUE:
            return self.wait_new(wf, new_id, holder)
        now = _now()
        reason = f"workflow is running (lock held by execution {holder})"
        values = self.fire_values(new_id, wf) | {
            "status": ExecutionStatus.SKIPPED,
            "error": reason,
            "finished_at": now,
            "worker": self.ctx.hostname,
            "celery_task_id": self.task_id,
        }
        if self.insert_new(wf, values):
            self.rlog.bind(execution_id=new_id).info("fire skipped", reason=reason, policy=wf.concurrency.value)
            return Claim(Outcome.SKIPPED, new_id, reason=reason)
        return self.existing_fire(wf)

    def insert_new(self, wf: h.WorkflowDef, values: dict[str, Any]) -> bool:
        """Insert the fire's row against the definition ``wf``.

        ``False``: the fire exists already (the lock taken for it is released).  Raises
        :class:`_DefinitionChanged` (lock released) when the workflow was edited or deleted since
        ``wf`` was read, so the claim starts over with the current definition.
        """
        if self.sql(h.insert_fire_checked, values, wf):
            return True
        self.release_held()
        fresh = self.load()
        if fresh is None or fresh.updated_at != wf.updated_at:
            raise _DefinitionChanged(fresh)
        return False

    def wait_new(self, wf: h.WorkflowDef, new_id: uuid.UUID, holder: str) -> Claim:
        if self.insert_new(wf, self.fire_values(new_id, wf)):
            row = self.sql(h.get_execution, new_id)
        else:
            row = self.sql(h.get_fire, self.p.trigger_id, self.p.scheduled_for)
            if row is None or row.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RETRYING):
                return self.claim_existing(wf, row)
        return self.wait(wf, row, holder)

    def earlier(self, wf: h.WorkflowDef, execution_id: uuid.UUID | None, scheduled_for: datetime | None) -> Any:
        if scheduled_for is None:
            return None
        since = _now() - timedelta(seconds=self.max_wait(wf))
        return self.sql(h.earlier_waiting, wf.id, execution_id, scheduled_for, since)

    def max_wait(self, wf: h.WorkflowDef) -> float:
        return wf.max_queue_wait if wf.max_queue_wait is not None else self.settings.max_queue_wait

    def wait(self, wf: h.WorkflowDef, row: h.ExecRow, holder: str) -> Claim:
        """Retry later for the lock, or give up as ``skipped`` after ``max_queue_wait``."""
        now = _now()
        start = self.p.enqueued_at or now
        waited = (now - start).total_seconds()
        limit = self.max_wait(wf)
        token = row.lock_token if row.status is ExecutionStatus.RUNNING else ...
        if waited >= limit:
            reason = f"waited {waited:.1f}s (max_queue_wait {limit:g}s) for the lock held by {holder}"
            ok = self.sql(
                h.transition,
                row.id,
                from_status=row.status,
                lock_token=token,
                values={"status": ExecutionStatus.SKIPPED, "error": reason, "finished_at": now},
            )
            if ok:
                self.rlog.bind(execution_id=row.id).info("fire skipped", reason=reason, policy=wf.concurrency.value)
                return Claim(Outcome.SKIPPED, row.id, reason=reason)
            return self.claim_existing(wf, self.sql(h.get_execution, row.id))
        retries = int(getattr(self.task.request, "retries", 0) or 0)
        countdown = min(QUEUE_POLL_MAX, QUEUE_POLL_MIN * 2 ** min(retries, 8), max(0.05, limit - waited))
        self.rlog.bind(execution_id=row.id).debug("waiting for the lock", holder=holder, retry_in=round(countdown, 2))
        raise self.retry(countdown=countdown, reason="lock", execution_id=row.id, enqueued_at=start.isoformat())

    def is_live(self, wf: h.WorkflowDef, row: h.ExecRow) -> bool:
        """Does the run recorded in ``row`` still hold its lock (i.e. is its worker alive)?"""
        key = (
            execution_lease_key(self.ctx.keys, row.id)
            if wf.concurrency is ConcurrencyPolicy.ALLOW
            else self.ctx.keys.workflow_lock(wf.id)
        )
        value = self.ctx.redis.get(key)
        token, _ = split_value(str(value) if value is not None else None)
        return token is not None and token == row.lock_token

    def claim_existing(self, wf: h.WorkflowDef, row: h.ExecRow | None) -> Claim:
        if row is None:
            self.rlog.error("fire dropped: execution not found")
            return Claim(Outcome.DROPPED, self.p.execution_id, reason="execution not found")
        rlog = self.rlog.bind(execution_id=row.id)
        if row.status.is_final:
            rlog.info("duplicate delivery ignored: execution already finished", status=row.status.value)
            return Claim(Outcome.DUPLICATE, row.id, reason=f"already {row.status.value}")
        if row.status is ExecutionStatus.RUNNING and self.is_live(wf, row):
            rlog.info("duplicate delivery ignored: execution is running elsewhere")
            return Claim(Outcome.DUPLICATE, row.id, reason="running elsewhere")
        lock = self.new_lock(wf, row.id)
        if not lock.acquire():
            holder = _owner(lock.holder())
            if row.status is ExecutionStatus.QUEUED and wf.concurrency is ConcurrencyPolicy.FORBID:
                reason = f"workflow is running (lock held by execution {holder})"
                if self.sql(
                    h.transition,
                    row.id,
                    from_status=ExecutionStatus.QUEUED,
                    values={"status": ExecutionStatus.SKIPPED, "error": reason, "finished_at": _now()},
                ):
                    rlog.info("fire skipped", reason=reason, policy=wf.concurrency.value)
                    return Claim(Outcome.SKIPPED, row.id, reason=reason)
                return Claim(Outcome.DUPLICATE, row.id, reason="claimed concurrently")
            if wf.concurrency is ConcurrencyPolicy.ALLOW:  # the lease of this very row is held
                return Claim(Outcome.DUPLICATE, row.id, reason="claimed concurrently")
            return self.wait(wf, row, holder)
        self.held = lock
        if wf.concurrency is ConcurrencyPolicy.QUEUE and row.status is ExecutionStatus.QUEUED:
            earlier = self.earlier(wf, row.id, row.scheduled_for)
            if earlier is not None:
                self.release_held()
                return self.wait(wf, row, f"earlier queued execution {earlier}")
        takeover = row.status is ExecutionStatus.RUNNING
        attempt = max(row.attempt, 1) if takeover else row.attempt + 1
        ok = self.sql(
            h.transition,
            row.id,
            from_status=row.status,
            lock_token=row.lock_token if takeover else ...,
            values=self.running_values(lock, attempt),
        )
        if not ok:
            self.release_held()
            rlog.info("duplicate delivery ignored: claimed concurrently")
            return Claim(Outcome.DUPLICATE, row.id, reason="claimed concurrently")
        if takeover:
            rlog.warning("took over a stale execution (its worker died, its lock expired)", attempt=attempt)
        return Claim(Outcome.RUN, row.id, attempt, lock, scheduled_for=row.scheduled_for, user_id=row.user_id)

    # .. run ..
    def run(self, wf: h.WorkflowDef, claim: Claim) -> dict[str, Any]:
        assert claim.lock is not None and claim.execution_id is not None
        lock = claim.lock
        rlog = self.rlog.bind(execution_id=claim.execution_id, scheduled_for=claim.scheduled_for)
        rlog.info("execution started", attempt=claim.attempt, worker=self.ctx.hostname, task_id=self.task_id)
        t0 = time.monotonic()
        try:
            with lock.kept_alive():
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
                enqueued_at=(_now() + timedelta(seconds=retry_in)).isoformat(),
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
        """Write the outcome; the run already happened, so keep trying (lock renewed) before giving up."""
        assert claim.lock is not None and claim.execution_id is not None
        values: dict[str, Any] = {
            "status": ExecutionStatus.RETRYING if retry_in is not None else outcome.status,
            "finished_at": None if retry_in is not None else _now(),
            "duration_ms": duration_ms,
            "steps": outcome.steps,
            "error": outcome.error,
        }
        delay = 0.5
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                return bool(
                    self.sql(
                        h.transition,
                        claim.execution_id,
                        from_status=ExecutionStatus.RUNNING,
                        lock_token=claim.lock.token,
                        values=values,
                    )
                )
            except STORE_ERRORS as exc:
                if attempt == RECORD_ATTEMPTS:
                    self.rlog.error("outcome could not be recorded; giving up", error=_short(exc))
                    raise
                self.rlog.warning("outcome not recorded yet; retrying", error=_short(exc), retry_in=delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        return False  # pragma: no cover


def _owner(value: str | None) -> str:
    token, owner = split_value(value)
    return owner or token or "unknown"


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
                mark_killed(settings_of(self.app), kwargs or {}, task_id, str(exc))
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


def mark_killed(settings: Settings, kwargs: dict[str, Any], task_id: str, error: str) -> None:
    """A run killed at Celery's hard time limit: record it ``timed_out`` and free its lock."""
    ctx = worker_context(settings)
    try:
        payload = FirePayload.model_validate(kwargs)
    except ValidationError:
        return
    with ctx.engine.connect() as conn:
        if payload.execution_id is not None:
            row = h.get_execution(conn, payload.execution_id)
        elif payload.trigger_id is not None and payload.scheduled_for is not None:
            row = h.get_fire(conn, payload.trigger_id, payload.scheduled_for)
        else:
            return
        if row is None or row.status is not ExecutionStatus.RUNNING:
            return
        wf = h.load_workflow(conn, row.workflow_id)
        ok = h.transition(
            conn,
            row.id,
            from_status=ExecutionStatus.RUNNING,
            lock_token=row.lock_token,
            values={
                "status": ExecutionStatus.TIMED_OUT,
                "finished_at": _now(),
                "error": f"killed at the hard time limit ({error})",
            },
        )
    if ok and row.lock_token and wf is not None:
        key = (
            execution_lease_key(ctx.keys, row.id)
            if wf.concurrency is ConcurrencyPolicy.ALLOW
            else ctx.keys.workflow_lock(wf.id)
        )
        run_script(ctx.redis, "release", [key], [f"{row.lock_token}:{row.id}"])
    RunLog(
        workflow=wf.name if wf else None,
        workflow_id=row.workflow_id,
        trigger_id=row.trigger_id,
        execution_id=row.id,
        scheduled_for=row.scheduled_for,
    ).warning("execution timed_out (hard limit)", task_id=task_id)


def register_tasks(app: Celery) -> None:
    """Register woow's tasks on ``app`` (idempotent)."""
    if TASK_EXECUTE not in app.tasks:
        # a subclass per app: Celery binds the app on the task *class*
        cls = type("ExecuteWorkflowTask", (ExecuteWorkflowTask,), {"__module__": __name__})
        app.register_task(cls())
