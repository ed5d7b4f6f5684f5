"""Execution history writes of the worker: SQLAlchemy Core, one statement per round trip.

Every state change is a conditional ``UPDATE ... WHERE status = <seen>`` (and, for a running row,
``lock_token = <seen>``) so two deliveries of the same fire can never both win: the loser sees
rowcount 0 and backs off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db import direct
from ..db.models import Execution, Trigger, Workflow
from ..enums import ConcurrencyPolicy, ExecutionStatus, TriggerState

executions: Table = Execution.__table__  # type: ignore[assignment]
workflows: Table = Workflow.__table__  # type: ignore[assignment]
triggers: Table = Trigger.__table__  # type: ignore[assignment]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkflowDef:
    id: uuid.UUID
    name: str
    steps: list[dict[str, Any]]
    concurrency: ConcurrencyPolicy
    max_retries: int
    retry_delay: float
    retry_backoff: bool
    timeout: float | None
    max_queue_wait: float | None
    updated_at: datetime | None = None  # version of the definition: a fire is claimed against it


@dataclass(frozen=True)
class ExecRow:
    id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID | None
    status: ExecutionStatus
    attempt: int
    lock_token: str | None
    scheduled_for: datetime | None
    started_at: datetime | None
    user_id: str | None
    lock_key: str | None = None  # pinned at claim time, with the policy and the fence
    lock_policy: ConcurrencyPolicy | None = None
    fence: int | None = None
    worker: str | None = None


_WF_COLS = (
    workflows.c.id,
    workflows.c.name,
    workflows.c.steps,
    workflows.c.concurrency,
    workflows.c.max_retries,
    workflows.c.retry_delay,
    workflows.c.retry_backoff,
    workflows.c.timeout,
    workflows.c.max_queue_wait,
    workflows.c.updated_at,
)
_EX_COLS = (
    executions.c.id,
    executions.c.workflow_id,
    executions.c.trigger_id,
    executions.c.status,
    executions.c.attempt,
    executions.c.lock_token,
    executions.c.scheduled_for,
    executions.c.started_at,
    executions.c.user_id,
    executions.c.lock_key,
    executions.c.lock_policy,
    executions.c.fence,
    executions.c.worker,
)


# Statements are built once with bind parameters: building a Core statement per call (values(),
# cache key) cost more than the round trip itself on the hot path.
_LOAD_WF = select(*_WF_COLS).where(workflows.c.id == bindparam("wid"))
_GET_EXEC = select(*_EX_COLS).where(executions.c.id == bindparam("eid"))
_GET_FIRE = select(*_EX_COLS).where(
    and_(executions.c.trigger_id == bindparam("tid"), executions.c.scheduled_for == bindparam("sf"))
)
# why a fire's claim inserted nothing: the definition, the trigger's state and the fire's row in
# one round trip (no row: the workflow is gone; no trigger state: the trigger was deleted)
_LOOK_FIRE_WF = (
    select(*[c.label(f"wf_{c.key}") for c in _WF_COLS], triggers.c.state.label("trigger_state"), *_EX_COLS)
    .select_from(
        workflows.outerjoin(triggers, triggers.c.id == bindparam("tid")).outerjoin(
            executions,
            and_(executions.c.trigger_id == triggers.c.id, executions.c.scheduled_for == bindparam("sf")),
        )
    )
    .where(workflows.c.id == bindparam("wid"))
)
_UPDATES: dict[tuple[bool, bool, int], Any] = {}


def _checked_fire_insert(dialect_insert: Any, any_state: bool) -> Any:
    """``INSERT ... SELECT ... FROM workflows WHERE id = :_wid AND updated_at = :_wts [AND the trigger
    is there and not paused] ON CONFLICT DO NOTHING``.

    The row goes in only if the fire is new, the workflow still has the definition the worker holds
    (same ``updated_at``) and, unless ``any_state`` (the ``skipped`` row of a paused trigger's fire),
    its trigger still exists and is not paused.  So the insert is the claim's look: a duplicate, a
    stale or deleted definition, a deleted or paused trigger all insert nothing, and only then does
    the caller look closer (:func:`look_fire_with_workflow`).  A worker may therefore keep
    definitions in memory, and a new fire costs one statement.
    """
    cols = [c.name for c in executions.c if c.name != "workflow_id"]
    cond = [
        workflows.c.id == bindparam("_wid"),
        workflows.c.updated_at == bindparam("_wts", type_=workflows.c.updated_at.type),
    ]
    if not any_state:
        cond.append(
            exists()
            .where(triggers.c.id == bindparam("_tid", type_=triggers.c.id.type))
            .where(triggers.c.state != TriggerState.PAUSED)
        )
    sel = select(workflows.c.id, *[bindparam(c, type_=executions.c[c].type) for c in cols]).where(and_(*cond))
    stmt = dialect_insert(executions).from_select(["workflow_id", *cols], sel)
    if dialect_insert is postgresql.insert:
        stmt = stmt.on_conflict_do_nothing(constraint="uq_executions_fire")
    else:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(executions.c.id)


_INSERT_FIRE_CHECKED: dict[tuple[str, bool], Any] = {
    (name, any_state): _checked_fire_insert(insert, any_state)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
    for any_state in (False, True)
}


def _update_stmt(with_token: bool, token_null: bool, n_status: int) -> Any:
    # one statement per shape, with a fixed number of status parameters: an expanding IN would be
    # re-rendered on every execution (measured: a third of the statement's client-side cost)
    key = (with_token, token_null, n_status)
    stmt = _UPDATES.get(key)
    if stmt is None:
        cond = [
            executions.c.id == bindparam("_eid"),
            executions.c.status.in_([bindparam(f"_from{i}") for i in range(n_status)]),
        ]
        if with_token:
            cond.append(
                executions.c.lock_token.is_(None) if token_null else executions.c.lock_token == bindparam("_tok")
            )
        stmt = _UPDATES[key] = update(executions).where(and_(*cond))
    return stmt


def _wf(row: Any, p: str = "") -> WorkflowDef:
    def col(name: str) -> Any:
        return getattr(row, p + name)

    retry_delay = col("retry_delay")
    return WorkflowDef(
        id=col("id"),
        name=col("name"),
        steps=list(col("steps") or []),
        concurrency=ConcurrencyPolicy(col("concurrency")),
        max_retries=int(col("max_retries") or 0),
        retry_delay=float(retry_delay if retry_delay is not None else 15.0),
        retry_backoff=bool(col("retry_backoff")),
        timeout=col("timeout"),
        max_queue_wait=col("max_queue_wait"),
        updated_at=col("updated_at"),
    )


def load_workflow(conn: Connection, workflow_id: uuid.UUID) -> WorkflowDef | None:
    row = direct.first(conn, _LOAD_WF, {"wid": workflow_id})
    return _wf(row) if row is not None else None


def _exec(row: Any) -> ExecRow:
    return ExecRow(
        id=row.id,
        workflow_id=row.workflow_id,
        trigger_id=row.trigger_id,
        status=ExecutionStatus(row.status),
        attempt=int(row.attempt or 0),
        lock_token=row.lock_token,
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        user_id=row.user_id,
        lock_key=row.lock_key,
        lock_policy=ConcurrencyPolicy(row.lock_policy) if row.lock_policy else None,
        fence=row.fence,
        worker=row.worker,
    )


def get_execution(conn: Connection, execution_id: uuid.UUID) -> ExecRow | None:
    row = conn.execute(_GET_EXEC, {"eid": execution_id}).first()
    return _exec(row) if row is not None else None


def get_fire(conn: Connection, trigger_id: uuid.UUID, scheduled_for: datetime) -> ExecRow | None:
    row = conn.execute(_GET_FIRE, {"tid": trigger_id, "sf": scheduled_for}).first()
    return _exec(row) if row is not None else None


def look_fire_with_workflow(
    conn: Connection, workflow_id: uuid.UUID, trigger_id: uuid.UUID, scheduled_for: datetime
) -> tuple[WorkflowDef | None, TriggerState | None, ExecRow | None]:
    """The workflow's definition (``None``: deleted, and then nothing else), its trigger's state
    (``None``: deleted) and the fire's row, in one round trip (one snapshot)."""
    row = direct.first(conn, _LOOK_FIRE_WF, {"wid": workflow_id, "tid": trigger_id, "sf": scheduled_for})
    if row is None:
        return None, None, None
    trigger_state = TriggerState(row.trigger_state) if row.trigger_state is not None else None
    return _wf(row, "wf_"), trigger_state, (_exec(row) if row.id is not None else None)


def _full_row(values: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "trigger_id": None,
        "user_id": None,
        "scheduled_for": None,
        "enqueued_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "status": ExecutionStatus.QUEUED,
        "attempt": 0,
        "worker": None,
        "celery_task_id": None,
        "lock_token": None,
        "lock_key": None,
        "lock_policy": None,
        "fence": None,
        "due_at": None,
        "error": None,
        "steps": [],
        "backfill": False,
        "jitter_ms": None,
        "created_at": now,
        "updated_at": now,
    }
    row.update(values)
    return row


def insert_fire_checked(conn: Connection, values: dict[str, Any], wf: WorkflowDef, *, any_state: bool = False) -> bool:
    """Insert the row of a new fire (trigger_id, scheduled_for) while the workflow's definition is
    still ``wf`` and (unless ``any_state``) its trigger exists and is not paused.

    ``True`` if inserted; ``False`` if the fire exists already, the definition changed or the
    trigger is gone or paused (see :func:`_checked_fire_insert`).  RETURNING rather than rowcount:
    the driver reports rowcount -1 for ``INSERT ... ON CONFLICT``.
    """
    stmt = _INSERT_FIRE_CHECKED.get((conn.dialect.name, any_state))
    if stmt is None:  # pragma: no cover - only PostgreSQL and SQLite are supported
        raise RuntimeError(f"unsupported database dialect {conn.dialect.name}")
    row = _full_row(values)
    row.pop("workflow_id", None)
    row["_wid"], row["_wts"] = wf.id, wf.updated_at
    if not any_state:
        row["_tid"] = row["trigger_id"]
    return direct.execute(conn, stmt, row).row is not None


def insert_execution(conn: Connection, values: dict[str, Any]) -> uuid.UUID:
    """Insert an execution row that has no fire key (manual runs); return its id."""
    row = _full_row(values)
    conn.execute(executions.insert().values(row))
    return uuid.UUID(str(row["id"]))


def transition(
    conn: Connection,
    execution_id: uuid.UUID,
    *,
    from_status: ExecutionStatus | Iterable[ExecutionStatus],
    lock_token: str | object | None = ...,
    values: dict[str, Any],
) -> bool:
    """``UPDATE`` the row only if it is still in ``from_status`` (and held by ``lock_token``, when given)."""
    statuses = [from_status] if isinstance(from_status, ExecutionStatus) else list(from_status)
    if not statuses:
        raise ValueError("transition needs at least one from_status")
    params: dict[str, Any] = {**values, "updated_at": utcnow(), "_eid": execution_id}
    params.update({f"_from{i}": status for i, status in enumerate(statuses)})
    with_token = lock_token is not ...
    if with_token and lock_token is not None:
        params["_tok"] = lock_token
    result = direct.execute(conn, _update_stmt(with_token, with_token and lock_token is None, len(statuses)), params)
    return result.rowcount == 1


def earlier_waiting(
    conn: Connection, workflow_id: uuid.UUID, execution_id: uuid.UUID | None, scheduled_for: datetime, since: datetime
) -> uuid.UUID | None:
    """A ``queued`` execution of the workflow scheduled before ``scheduled_for`` still waiting (queue policy)."""
    cond = [
        executions.c.workflow_id == workflow_id,
        executions.c.status == ExecutionStatus.QUEUED,
        executions.c.scheduled_for < scheduled_for,
        executions.c.updated_at >= since,
    ]
    if execution_id is not None:
        cond.append(executions.c.id != execution_id)
    row = conn.execute(select(executions.c.id).where(and_(*cond)).order_by(executions.c.scheduled_for).limit(1)).first()
    return row.id if row is not None else None
