"""SQLAlchemy 2 typed ORM models: the source of truth.

The schema itself is only ever changed through Alembic migrations (``db/migrations``); a test
checks that the migrations produce exactly these models.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..enums import ConcurrencyPolicy, ExecutionStatus, InstanceKind, TriggerState
from .types import UTCDateTime, json_type

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type[Any], name: str) -> Enum:
    # VARCHAR + CHECK on every backend: adding a value later is a plain migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Workflow(Base):
    __tablename__ = "workflows"
    # names are unique per owner (the service also keeps the operator's, owner NULL, unique)
    __table_args__ = (UniqueConstraint("owner_user_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list[dict[str, Any]]] = mapped_column(json_type(), default=list)
    concurrency: Mapped[ConcurrencyPolicy] = mapped_column(
        _enum(ConcurrencyPolicy, "concurrency_policy"), default=ConcurrencyPolicy.FORBID
    )
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_delay: Mapped[float] = mapped_column(Float, default=15.0)
    retry_backoff: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_queue_wait: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner_user_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    labels: Mapped[dict[str, str]] = mapped_column(json_type(), default=dict)


class CalendarRow(Base):
    """A named calendar (woow_scheduler.calendars), shared by the triggers that refer to it."""

    __tablename__ = "calendars"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Trigger(Base):
    __tablename__ = "triggers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workflow_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict[str, Any]] = mapped_column(json_type())
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    dst_policy: Mapped[str] = mapped_column(String(20), default="wall_clock")
    state: Mapped[TriggerState] = mapped_column(
        _enum(TriggerState, "trigger_state"), default=TriggerState.NORMAL, index=True
    )
    misfire_policy: Mapped[str] = mapped_column(String(20), default="fire_once_now")
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    repeat_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fire_count: Mapped[int] = mapped_column(Integer, default=0)
    previous_fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Fires at or before this instant are never dispatched: set at creation and on resume, so a new
    # or resumed trigger never catches up on fires from before it existed or while it was paused.
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, index=True)
    # RESTRICT: a calendar in use cannot be deleted (the service names the triggers first)
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("calendars.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    labels: Mapped[dict[str, str]] = mapped_column(json_type(), default=dict)

    __table_args__ = (UniqueConstraint("workflow_id", "name"),)


class Execution(Base):
    __tablename__ = "executions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workflow_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workflows.id", ondelete="CASCADE"))
    # SET NULL keeps the history of a deleted trigger; the unique key below then no longer applies to it.
    trigger_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("triggers.id", ondelete="SET NULL"), nullable=True
    )
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # CHECK ck_executions_execution_status: on PostgreSQL written by migration 0006 as one text[]
    # constant (``status::text = ANY ('{queued,...}'::text[])``), the same set as this Enum's IN list:
    # PostgreSQL re-reads CHECK expressions on every INSERT and UPDATE, and one constant is cheaper
    status: Mapped[ExecutionStatus] = mapped_column(
        _enum(ExecutionStatus, "execution_status"), default=ExecutionStatus.QUEUED
    )
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    celery_task_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lock_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # pinned at claim time: the key and policy of the lock this run holds, and its fence number;
    # liveness checks and the reaper read these, never the workflow's current settings
    lock_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lock_policy: Mapped[str | None] = mapped_column(String(20), nullable=True)
    fence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # when the next attempt of a 'retrying' row is due (the reaper re-sends it if it never came)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(json_type(), default=list)
    # enqueued by `woow trigger backfill` rather than by beat (migration 0005)
    backfill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the dispatch delay beat gave this fire for its trigger's jitter, in ms (None: no jitter)
    jitter_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # a jitter may be weeks
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # one execution per nominal fire: the idempotency key of every scheduled run
        UniqueConstraint("trigger_id", "scheduled_for", name="uq_executions_fire"),
        # "history of one workflow, newest first"
        Index("ix_executions_workflow_created", "workflow_id", text("created_at DESC")),
        Index("ix_executions_trigger_created", "trigger_id", text("created_at DESC")),
        # "running executions": a small partial index
        Index(
            "ix_executions_active",
            "status",
            postgresql_where=text("status IN ('queued', 'running', 'retrying')"),
            sqlite_where=text("status IN ('queued', 'running', 'retrying')"),
        ),
        # "failed in the last hour" and global newest-first history
        Index("ix_executions_created", text("created_at DESC")),
    )


class SchedulerInstance(Base):
    """One row per running beat or worker process (Quartz's scheduler-state table)."""

    __tablename__ = "scheduler_instances"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[InstanceKind] = mapped_column(_enum(InstanceKind, "instance_kind"))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    info: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)


class ApiToken(Base):
    """A bearer token of the HTTP API; only its SHA-256 is stored (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    #: space-separated scopes (``permissions.SCOPES``): read, write, admin, metrics, privileges
    scopes: Mapped[str] = mapped_column(String(500), default="read write", server_default="read write")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
