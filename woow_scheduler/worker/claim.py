"""The claim: which delivery of a fire may run it, under which lock.

Every write is conditional, so concurrent deliveries of one fire cannot both win:

- **new fire**: take the lock (owner = a fresh execution id, a new fence), then ``INSERT ... ON
  CONFLICT DO NOTHING`` the row as ``running`` with the lock's key, policy and fence pinned on it.
  The insert is the look: it inserts nothing for a fire that has a row already, a stale or deleted
  definition, or a deleted or paused trigger, and only then does the delivery give the lock back
  and read why (one statement per new fire instead of a look and an insert).  A duplicate delivery
  thus holds the lock for one round trip when the workflow is idle; a fire that meets a lock whose
  holder has no row waits for that row, or takes the lock once the holder gave it back, and is
  never recorded ``skipped`` behind a holder that inserted nothing.
- **existing row**: finished -> duplicate, dropped; ``running`` -> the lock *pinned on the row*
  (never the workflow's current policy) decides: held by the run's token and its holder alive ->
  the delivery is retried later until the run ends (never dropped: the run may die); held but its
  holder process is known dead (same node, pid gone) -> taken over at once; free -> taken over;
  ``queued``/``retrying`` -> claimed.
- **lock held**: when the lock names an execution whose row is finished (a release lost, or undone
  by a Redis failover that promoted a replica which had not seen it), the lock is stale: it is
  taken over in one compare-and-set (:meth:`Delivery.acquire_held`; workflow locks only).
  Otherwise the policy object decides (:class:`Forbid`, :class:`Queue`, :class:`Allow`).
- a message naming an execution of another workflow or user is refused: nothing is written.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal

import redis
from celery import Task
from celery.exceptions import Retry
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ..enums import ConcurrencyPolicy, ExecutionStatus, TriggerState
from ..errors import StoreUnavailable
from ..keys import Keys, split_lock_value
from ..messaging.payload import FirePayload
from . import history as h
from .context import WorkerContext
from .lock import WorkflowLock, lock_holder, pinned_lock
from .logfmt import RunLog

log = logging.getLogger("woow.worker")

QUEUE_POLL_MIN = 0.2  # first wait of a 'queue' fire for the lock (seconds), doubled up to QUEUE_POLL_MAX
QUEUE_POLL_MAX = 2.0
STALE_CLAIMS = 5  # claims in a row that may find the definition changed under them
HOLDER_RETRIES = 50  # times a new fire tries a lock again that a holder without a row gave back
HOLDER_SETTLE_S = 2.0  # how long a fire finding the lock held waits for a holder without a row


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


class DefinitionChanged(Exception):
    """The workflow's definition changed (or it was deleted) after this worker read it."""

    def __init__(self, fresh: h.WorkflowDef | None) -> None:
        super().__init__("workflow definition changed")
        self.fresh = fresh


class TriggerGone(Exception):
    """The fire's trigger was deleted after beat published it (its row would break the foreign key)."""


class TriggerPaused(Exception):
    """The fire's trigger was paused after beat published it."""


def now() -> datetime:
    return datetime.now(UTC)


# -- policies -----------------------------------------------------------------------------------------


class Policy:
    """A concurrency policy: the lock key it takes and what a fire does when that lock is held."""

    kind: ClassVar[ConcurrencyPolicy]
    #: the lock is the workflow's, held by one run at a time: a lock naming a finished execution is
    #: stale and is taken over (:meth:`Delivery.acquire_held`)
    frees_stale: ClassVar[bool] = True

    def lock_key(self, keys: Keys, workflow_id: uuid.UUID, execution_id: uuid.UUID) -> str:
        return keys.workflow_lock(workflow_id)

    def fence_key(self, keys: Keys, workflow_id: uuid.UUID) -> str:
        return keys.workflow_fence(workflow_id)

    def new_lock(self, d: Delivery, workflow_id: uuid.UUID, execution_id: uuid.UUID) -> WorkflowLock:
        keys = d.ctx.keys
        return WorkflowLock(
            d.ctx.redis,
            self.lock_key(keys, workflow_id, execution_id),
            d.settings.lock_ttl,
            owner=str(execution_id),
            fence=self.fence_key(keys, workflow_id),
        )

    def before_run(self, d: Delivery, wf: h.WorkflowDef, row_id: uuid.UUID | None, when: datetime | None) -> str | None:
        """A reason to give the lock back and wait (an earlier fire goes first), or ``None``."""
        return None

    def new_fire_held(self, d: Delivery, wf: h.WorkflowDef, new_id: uuid.UUID, holder: str) -> Claim:
        raise NotImplementedError

    def existing_held(self, d: Delivery, wf: h.WorkflowDef, row: h.ExecRow, holder: str, rlog: RunLog) -> Claim:
        return d.wait(wf, row, holder)


class Forbid(Policy):
    """Quartz's DisallowConcurrentExecution: a fire that finds the workflow locked is ``skipped``."""

    kind = ConcurrencyPolicy.FORBID

    def new_fire_held(self, d: Delivery, wf: h.WorkflowDef, new_id: uuid.UUID, holder: str) -> Claim:
        # The holder may be another delivery of this very fire, between its lock and its insert: a
        # `skipped` row written now would win the insert and the fire would never run.
        row = d.after_holder_settles(holder, wf.id)
        if row == "free":
            d.lock_tries += 1
            return d.claim_new_fire(wf)
        if row is not None:
            return d.claim_existing(wf, row)
        reason = f"workflow is running (lock held by execution {holder})"
        values = d.fire_values(new_id, wf) | {
            "status": ExecutionStatus.SKIPPED,
            "error": reason,
            "finished_at": now(),
            "worker": d.ctx.hostname,
            "celery_task_id": d.task_id,
        }
        if d.insert_new(wf, values):
            d.rlog.bind(execution_id=new_id).info("fire skipped", reason=reason, policy=self.kind.value)
            return Claim(Outcome.SKIPPED, new_id, reason=reason)
        return d.existing_fire(wf)

    def existing_held(self, d: Delivery, wf: h.WorkflowDef, row: h.ExecRow, holder: str, rlog: RunLog) -> Claim:
        if row.status is not ExecutionStatus.QUEUED:
            return d.wait(wf, row, holder)
        reason = f"workflow is running (lock held by execution {holder})"
        if d.sql(
            h.transition,
            row.id,
            from_status=ExecutionStatus.QUEUED,
            values={"status": ExecutionStatus.SKIPPED, "error": reason, "finished_at": now()},
        ):
            rlog.info("fire skipped", reason=reason, policy=self.kind.value)
            return Claim(Outcome.SKIPPED, row.id, reason=reason)
        return Claim(Outcome.DUPLICATE, row.id, reason="claimed concurrently")


class Queue(Policy):
    """Fires wait (retry with backoff, earlier fires first) for the lock, bounded by ``max_queue_wait``."""

    kind = ConcurrencyPolicy.QUEUE

    def before_run(self, d: Delivery, wf: h.WorkflowDef, row_id: uuid.UUID | None, when: datetime | None) -> str | None:
        earlier = d.earlier(wf, row_id, when)
        return f"earlier queued execution {earlier}" if earlier is not None else None

    def new_fire_held(self, d: Delivery, wf: h.WorkflowDef, new_id: uuid.UUID, holder: str) -> Claim:
        return d.wait_new(wf, new_id, holder)


class Allow(Policy):
    """No workflow lock: a per-execution lease (with its own fence) proves the run is alive."""

    kind = ConcurrencyPolicy.ALLOW
    # a lease names its own execution only, and a finished row is never claimed: nothing to free
    frees_stale = False

    def lock_key(self, keys: Keys, workflow_id: uuid.UUID, execution_id: uuid.UUID) -> str:
        return keys.execution_lease(execution_id)

    def fence_key(self, keys: Keys, workflow_id: uuid.UUID) -> str:
        return keys.lease_fence

    def new_fire_held(self, d: Delivery, wf: h.WorkflowDef, new_id: uuid.UUID, holder: str) -> Claim:
        return d.existing_fire(wf)  # a fresh execution id's lease cannot be held: look again

    def existing_held(self, d: Delivery, wf: h.WorkflowDef, row: h.ExecRow, holder: str, rlog: RunLog) -> Claim:
        return Claim(Outcome.DUPLICATE, row.id, reason="claimed concurrently")  # this very row's lease


POLICIES: dict[ConcurrencyPolicy, Policy] = {p.kind: p for p in (Forbid(), Queue(), Allow())}


def pinned_lock_key(keys: Keys, row: h.ExecRow, current: ConcurrencyPolicy | None) -> str | None:
    """The lock key a run holds: the one pinned on its row (older rows: from ``current``)."""
    if row.lock_key:
        return row.lock_key
    policy = row.lock_policy or current
    if policy is None:
        return None
    return POLICIES[policy].lock_key(keys, row.workflow_id, row.id)


def _owner(value: str | None) -> str:
    token, owner = split_lock_value(value)
    return owner or token or "unknown"


# -- one delivery's claim -------------------------------------------------------------------------------


class Delivery:
    """One delivery of ``execute_workflow`` up to its claim (see the module doc)."""

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
        self.lock_tries = 0  # times this delivery found a lock given back by a holder without a row
        self._conn: Connection | None = None
        # Prefork children and the solo pool run one task at a time on their main thread: such a
        # run keeps one pooled connection from claim to record (a checkout per statement cost about
        # a seventh of an execution's client CPU), and on PostgreSQL the process keeps it for its
        # next run too (WorkerContext.kept_conn: a checkout and check-in per run cost about 7 % of
        # an execution's client CPU).  Thread and greenlet pools, where many runs share a process's
        # pool, hand the connection back after every statement.
        self._keep_conn = threading.current_thread() is threading.main_thread()

    # .. helpers ..
    def sql(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self._conn
        if conn is None and self._keep_conn:
            conn = self.ctx.take_kept_conn()
        if conn is None:
            conn = self.ctx.engine.connect()
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
        """End of the run: its connection goes back to the pool, or stays with the process for the
        next run (:meth:`WorkerContext.keep_conn`).  A connection whose statement failed was closed
        (and invalidated if it broke) by :meth:`sql` already and is never kept."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self.ctx.keep_conn(conn)

    def running_values(self, lock: WorkflowLock, attempt: int, policy: Policy) -> dict[str, Any]:
        return {
            "status": ExecutionStatus.RUNNING,
            "attempt": attempt,
            "started_at": now(),
            "finished_at": None,
            "duration_ms": None,
            "worker": self.ctx.hostname,
            "celery_task_id": self.task_id,
            "lock_token": lock.token,
            "lock_key": lock.key,
            "lock_policy": policy.kind.value,
            "fence": lock.fence,
        }

    def retry(self, *, countdown: float, reason: str, **changes: Any) -> Retry:
        kwargs = self.p.to_kwargs()
        kwargs.update({k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in changes.items()})
        return self.task.retry(kwargs=kwargs, countdown=max(0.0, countdown), max_retries=None, exc=None)

    def release_held(self, *, wait: bool = True) -> None:
        lock, self.held = self.held, None
        if lock is not None:
            with contextlib.suppress(redis.RedisError):  # it expires on its own
                if wait:
                    lock.release()
                else:
                    lock.release_nowait()

    # .. definitions ..
    def load(self) -> h.WorkflowDef | None:
        """The workflow's definition read now (and kept for the next scheduled fires)."""
        wf: h.WorkflowDef | None = self.sql(h.load_workflow, self.p.workflow_id)
        if wf is None:
            self.ctx.workflows.discard(self.p.workflow_id)
        else:
            self.ctx.workflows.put(wf)
        return wf

    def definition(self) -> h.WorkflowDef | None:
        """A scheduled fire may start from the kept definition (its claim's insert checks it is current)."""
        p = self.p
        if p.trigger_id is not None and p.execution_id is None:
            kept = self.ctx.workflows.get(p.workflow_id)
            if kept is not None:
                return kept
        return self.load()

    def claim_current(self) -> tuple[h.WorkflowDef | None, Claim]:
        """Claim against the current definition (read again while it changes under the claim)."""
        wf = self.definition()
        for _ in range(STALE_CLAIMS):
            if wf is None:
                self.rlog.error("fire dropped: workflow no longer exists")
                return None, Claim(Outcome.DROPPED, reason="workflow not found")
            self.rlog = self.rlog.bind(workflow=wf.name)
            try:
                return wf, self.claim(wf)
            except DefinitionChanged as changed:
                wf = changed.fresh
        raise StoreUnavailable(f"workflow {self.p.workflow_id} kept changing while its fire was claimed")

    # .. claim ..
    def claim(self, wf: h.WorkflowDef) -> Claim:
        p = self.p
        if p.execution_id is not None:
            return self.claim_existing(wf, self.sql(h.get_execution, p.execution_id))
        if p.trigger_id is None:  # ad-hoc run without a pre-created row
            new_id = self.sql(
                h.insert_execution,
                {"workflow_id": wf.id, "user_id": p.user_id, "scheduled_for": now(), "enqueued_at": p.enqueued_at},
            )
            return self.claim_existing(wf, self.sql(h.get_execution, new_id))
        # the claim's insert is the look (see the module doc): a fire with a row, a paused or a
        # deleted trigger inserts nothing, and insert_new says which
        assert p.scheduled_for is not None
        try:
            try:
                return self.claim_new_fire(wf)
            except TriggerPaused:
                return self.refuse_paused(wf)
        except TriggerGone:
            reason = "trigger no longer exists"
            self.rlog.warning("fire dropped: its trigger was deleted after it was published")
            return Claim(Outcome.DROPPED, None, reason=reason)

    def refuse_paused(self, wf: h.WorkflowDef) -> Claim:
        """A fire of a trigger paused since beat published it: recorded ``skipped``, never run."""
        new_id = uuid.uuid4()
        reason = "trigger paused after this fire was published"
        values = self.fire_values(new_id, wf) | {
            "status": ExecutionStatus.SKIPPED,
            "error": reason,
            "finished_at": now(),
            "worker": self.ctx.hostname,
            "celery_task_id": self.task_id,
        }
        if self.insert_new(wf, values, any_state=True):
            self.rlog.bind(execution_id=new_id).info("fire skipped", reason=reason)
            return Claim(Outcome.SKIPPED, new_id, reason=reason)
        return self.existing_fire(wf)

    def fire_values(self, new_id: uuid.UUID, wf: h.WorkflowDef) -> dict[str, Any]:
        return {
            "id": new_id,
            "workflow_id": wf.id,
            "trigger_id": self.p.trigger_id,
            "user_id": self.p.user_id,
            "scheduled_for": self.p.scheduled_for,
            "enqueued_at": self.p.enqueued_at,
            "backfill": self.p.backfill,
            "jitter_ms": self.p.jitter_ms,
        }

    def after_holder_settles(self, holder: str, workflow_id: uuid.UUID) -> h.ExecRow | Literal["free"] | None:
        """This fire's row once the lock's holder has a row of its own (or ``HOLDER_SETTLE_S`` passed).

        A holder without a row is a delivery between taking the lock and inserting its fire.  When
        it is a duplicate of this fire, its row is this fire's row (``claim_existing`` then treats
        this delivery as the duplicate it is).  When its insert found nothing to insert (a duplicate
        of a fire that has a row, a paused trigger's fire) it gives the lock back at once: ``"free"``
        then says the workflow lock of ``workflow_id`` (the only lock a fire waits on here: forbid's)
        no longer names ``holder`` and this fire should try it again."""
        assert self.p.trigger_id is not None and self.p.scheduled_for is not None
        try:
            holder_id = uuid.UUID(holder)
        except ValueError:
            holder_id = None
        deadline = time.monotonic() + HOLDER_SETTLE_S
        while True:
            row: h.ExecRow | None = self.sql(h.get_fire, self.p.trigger_id, self.p.scheduled_for)
            if row is not None:
                return row
            if holder_id is None:
                # no holder to wait for: the lock was given back before it could be read ("unknown"),
                # or it names no execution (taken by hand)
                return "free" if holder == _owner(None) and self.tries_left() else None
            if time.monotonic() >= deadline:
                return row
            if self.sql(h.get_execution, holder_id) is not None:
                found: h.ExecRow | None = self.sql(h.get_fire, self.p.trigger_id, self.p.scheduled_for)
                return found
            if (lock_holder(self.ctx.redis, self.ctx.keys, workflow_id) or _owner(None)) != holder:
                # the holder gave the lock back without a row (its insert found its fire's row, a
                # paused trigger, a changed definition) or it expired: this fire's own row may have
                # been inserted meanwhile by a duplicate, so look once more before trying again
                again: h.ExecRow | None = self.sql(h.get_fire, self.p.trigger_id, self.p.scheduled_for)
                if again is not None or not self.tries_left():
                    return again
                return "free"
            time.sleep(0.02)

    def tries_left(self) -> bool:
        return self.lock_tries < HOLDER_RETRIES

    def existing_fire(self, wf: h.WorkflowDef) -> Claim:
        assert self.p.trigger_id is not None and self.p.scheduled_for is not None
        return self.claim_existing(wf, self.sql(h.get_fire, self.p.trigger_id, self.p.scheduled_for))

    def claim_new_fire(self, wf: h.WorkflowDef) -> Claim:
        p = self.p
        assert p.scheduled_for is not None
        policy = POLICIES[wf.concurrency]
        new_id = uuid.uuid4()
        lock = policy.new_lock(self, wf.id, new_id)
        if not lock.acquire():
            holder = self.acquire_held(policy, wf, lock)
            if holder is not None:
                return policy.new_fire_held(self, wf, new_id, holder)
        self.held = lock
        wait_for = policy.before_run(self, wf, None, p.scheduled_for)
        if wait_for is not None:
            self.release_held()
            return self.wait_new(wf, new_id, wait_for)
        values = self.fire_values(new_id, wf) | self.running_values(lock, 1, policy)
        if self.insert_new(wf, values):
            return Claim(Outcome.RUN, new_id, 1, lock, scheduled_for=p.scheduled_for, user_id=p.user_id)
        return self.existing_fire(wf)

    def acquire_held(self, policy: Policy, wf: h.WorkflowDef, lock: WorkflowLock) -> str | None:
        """The acquire of ``lock`` found it held: ``None`` when it is ours after all, else who holds it.

        A lock naming an execution whose row is finished (not queued, running or retrying) is
        stale: its run recorded its outcome and its release was lost (sent unanswered and dropped,
        or undone by a Redis failover to a replica that had not seen it).  It is taken over only
        while the key still holds exactly the value read (``lua/acquire.lua`` with ``expected``:
        compare and take in one step, with a new fence).  A delete followed by a second acquire
        would leave a moment with the key gone and the fence counter still at the stale holder's
        fence, in which a frozen holder that resumes re-takes the key with ``lua/renew.lua``.
        Finished is final: no claim ever moves such a row again, so no run of that execution can
        still need the lock (see docs/reliability.md for every way a row ends while its lock stays).
        A holder whose row is active or missing, or a value naming no execution: held, as before.
        """
        value = lock.holder()
        if policy.frees_stale and value is not None and self.finished_holder(wf, value):
            if lock.acquire(expected=value):
                self.rlog.warning(
                    "stale lock taken over: its holder's execution is finished",
                    key=lock.key,
                    holder=value,
                    fence=lock.fence,
                )
                return None
            value = lock.holder()  # changed since it was read: held by whoever holds it now
        return _owner(value)

    def finished_holder(self, wf: h.WorkflowDef, value: str) -> bool:
        """True when the lock value ``value`` names an execution of ``wf`` whose row is finished."""
        _, owner = split_lock_value(value)
        if owner is None:
            return False
        try:
            holder_id = uuid.UUID(owner)
        except ValueError:
            return False
        row: h.ExecRow | None = self.sql(h.get_execution, holder_id)
        return row is not None and row.workflow_id == wf.id and row.status.is_final

    def insert_new(self, wf: h.WorkflowDef, values: dict[str, Any], *, any_state: bool = False) -> bool:
        """Insert the fire's row against the definition ``wf`` (and, unless ``any_state``, a trigger
        that exists and is not paused).

        ``False``: the fire exists already (the lock taken for it is released).  Raises (lock
        released) :class:`DefinitionChanged` when the workflow was edited or deleted since ``wf`` was
        read, so the claim starts over with the current definition; :class:`TriggerGone` when the
        trigger was deleted and :class:`TriggerPaused` when it was paused since the fire was published.
        """
        try:
            inserted = self.sql(h.insert_fire_checked, values, wf, any_state=any_state)
        except IntegrityError:  # the only constraint it can break: the trigger's foreign key
            self.release_held()
            raise TriggerGone() from None
        if inserted:
            return True
        self.release_held()
        # nothing inserted: find out why, in one statement (one snapshot)
        assert self.p.trigger_id is not None and self.p.scheduled_for is not None
        fresh, state, row = self.sql(h.look_fire_with_workflow, wf.id, self.p.trigger_id, self.p.scheduled_for)
        if fresh is None:
            self.ctx.workflows.discard(wf.id)
            raise DefinitionChanged(None)
        self.ctx.workflows.put(fresh)
        if fresh.updated_at != wf.updated_at:
            raise DefinitionChanged(fresh)
        if row is None and state is None:
            raise TriggerGone()
        if row is None and state is TriggerState.PAUSED and not any_state:
            raise TriggerPaused()
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
        since = now() - timedelta(seconds=self.max_wait(wf))
        return self.sql(h.earlier_waiting, wf.id, execution_id, scheduled_for, since)

    def max_wait(self, wf: h.WorkflowDef) -> float:
        return wf.max_queue_wait if wf.max_queue_wait is not None else self.settings.max_queue_wait

    def wait(self, wf: h.WorkflowDef, row: h.ExecRow, holder: str) -> Claim:
        """Retry later for the lock, or give up as ``skipped`` after ``max_queue_wait``."""
        at = now()
        start = self.p.enqueued_at or at
        waited = (at - start).total_seconds()
        limit = self.max_wait(wf)
        token = row.lock_token if row.status is ExecutionStatus.RUNNING else ...
        if waited >= limit:
            reason = f"waited {waited:.1f}s (max_queue_wait {limit:g}s) for the lock held by {holder}"
            ok = self.sql(
                h.transition,
                row.id,
                from_status=row.status,
                lock_token=token,
                values={"status": ExecutionStatus.SKIPPED, "error": reason, "finished_at": at},
            )
            if ok:
                self.rlog.bind(execution_id=row.id).info("fire skipped", reason=reason, policy=wf.concurrency.value)
                return Claim(Outcome.SKIPPED, row.id, reason=reason)
            return self.claim_existing(wf, self.sql(h.get_execution, row.id))
        retries = int(getattr(self.task.request, "retries", 0) or 0)
        countdown = min(QUEUE_POLL_MAX, QUEUE_POLL_MIN * 2 ** min(retries, 8), max(0.05, limit - waited))
        self.rlog.bind(execution_id=row.id).debug("waiting for the lock", holder=holder, retry_in=round(countdown, 2))
        raise self.retry(countdown=countdown, reason="lock", execution_id=row.id, enqueued_at=start.isoformat())

    def foreign(self, wf: h.WorkflowDef, row: h.ExecRow) -> str | None:
        """Why ``row`` is not this message's to claim (another workflow's or user's), or ``None``."""
        if row.workflow_id != wf.id:
            return f"execution {row.id} belongs to another workflow"
        if self.p.execution_id is not None and row.user_id != self.p.user_id:
            return f"execution {row.id} belongs to another user"
        return None

    def claim_existing(self, wf: h.WorkflowDef, row: h.ExecRow | None) -> Claim:
        if row is None:
            self.rlog.error("fire dropped: execution not found")
            return Claim(Outcome.DROPPED, self.p.execution_id, reason="execution not found")
        refused = self.foreign(wf, row)
        if refused is not None:
            self.rlog.error("fire refused: the message names an execution that is not its own", reason=refused)
            return Claim(Outcome.DROPPED, None, reason=refused)
        rlog = self.rlog.bind(execution_id=row.id)
        if row.status.is_final:
            rlog.info("duplicate delivery ignored: execution already finished", status=row.status.value)
            return Claim(Outcome.DUPLICATE, row.id, reason=f"already {row.status.value}")
        policy = POLICIES[wf.concurrency]
        expected: str | None = None
        if row.status is ExecutionStatus.RUNNING:
            expected = self.running_holder(wf, row, rlog)
        lock = policy.new_lock(self, wf.id, row.id)
        if not lock.acquire(expected=expected):
            holder = self.acquire_held(policy, wf, lock)
            if holder is not None:
                return policy.existing_held(self, wf, row, holder, rlog)
        self.held = lock
        if row.status is ExecutionStatus.QUEUED:
            wait_for = policy.before_run(self, wf, row.id, row.scheduled_for)
            if wait_for is not None:
                self.release_held()
                return self.wait(wf, row, wait_for)
        takeover = row.status is ExecutionStatus.RUNNING
        attempt = max(row.attempt, 1) if takeover else row.attempt + 1
        ok = self.sql(
            h.transition,
            row.id,
            from_status=row.status,
            lock_token=row.lock_token if takeover else ...,
            values=self.running_values(lock, attempt, policy),
        )
        if not ok:
            self.release_held()
            rlog.info("duplicate delivery ignored: claimed concurrently")
            return Claim(Outcome.DUPLICATE, row.id, reason="claimed concurrently")
        if takeover:
            how = "its process is gone" if expected else "its lock expired"
            rlog.warning(f"took over a stale execution ({how})", attempt=attempt, fence=lock.fence)
        return Claim(Outcome.RUN, row.id, attempt, lock, scheduled_for=row.scheduled_for, user_id=row.user_id)

    def running_holder(self, wf: h.WorkflowDef, row: h.ExecRow, rlog: RunLog) -> str | None:
        """For a ``running`` row: the lock value to take over when its holder is known dead.

        Reads the lock pinned on the row.  Its run still holds it and may be alive -> the delivery
        is retried later (raises ``Retry``), never dropped: if that run dies, this delivery takes it
        over.  ``None``: the run's lock is gone (expired, or another run's), so the ordinary
        acquire decides.
        """
        pinned = pinned_lock(self.ctx.redis, pinned_lock_key(self.ctx.keys, row, wf.concurrency), row.lock_token)
        if pinned is None:
            return None
        value, held = pinned
        if held.holder_dead():
            return value
        countdown = min(30.0, max(0.5, self.settings.lock_ttl / 2))
        rlog.info("execution is running elsewhere; delivery checked again later", retry_in=countdown)
        raise self.retry(countdown=countdown, reason="running", execution_id=row.id)
