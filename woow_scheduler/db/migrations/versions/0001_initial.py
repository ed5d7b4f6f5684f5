"""Initial schema: workflows, triggers, executions, scheduler_instances, api_tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import woow_scheduler.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "scheduler_instances",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("beat", "worker", name="instance_kind", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("is_leader", sa.Boolean(), nullable=False),
        sa.Column(
            "info", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_instances")),
    )
    with op.batch_alter_table("scheduler_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduler_instances_last_heartbeat"), ["last_heartbeat"], unique=False)

    op.create_table(
        "workflows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "steps", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "concurrency",
            sa.Enum(
                "forbid",
                "queue",
                "allow",
                name="concurrency_policy",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay", sa.Float(), nullable=False),
        sa.Column("retry_backoff", sa.Boolean(), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("max_queue_wait", sa.Float(), nullable=True),
        sa.Column("owner_user_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("name", name=op.f("uq_workflows_name")),
    )
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflows_owner_user_id"), ["owner_user_id"], unique=False)

    op.create_table(
        "triggers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column(
            "spec", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("dst_policy", sa.String(length=20), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "NORMAL",
                "PAUSED",
                "COMPLETE",
                "ERROR",
                "BLOCKED",
                name="trigger_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("misfire_policy", sa.String(length=20), nullable=False),
        sa.Column("start_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("repeat_count", sa.Integer(), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("previous_fire_time", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_fire_time", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("anchor_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name=op.f("fk_triggers_workflow_id_workflows"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
        sa.UniqueConstraint("workflow_id", "name", name=op.f("uq_triggers_workflow_id_name")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_triggers_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_triggers_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_triggers_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "executions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("trigger_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("scheduled_for", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                "skipped",
                "retrying",
                "timed_out",
                name="execution_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("celery_task_id", sa.String(length=255), nullable=True),
        sa.Column("lock_token", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "steps", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"], name=op.f("fk_executions_trigger_id_triggers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name=op.f("fk_executions_workflow_id_workflows"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint("trigger_id", "scheduled_for", name="uq_executions_fire"),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_executions_active",
            ["status"],
            unique=False,
            postgresql_where=sa.text("status IN ('queued', 'running', 'retrying')"),
            sqlite_where=sa.text("status IN ('queued', 'running', 'retrying')"),
        )
        batch_op.create_index("ix_executions_created", [sa.literal_column("created_at DESC")], unique=False)
        batch_op.create_index(
            "ix_executions_trigger_created", ["trigger_id", sa.literal_column("created_at DESC")], unique=False
        )
        batch_op.create_index(
            "ix_executions_workflow_created", ["workflow_id", sa.literal_column("created_at DESC")], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_workflow_created")
        batch_op.drop_index("ix_executions_trigger_created")
        batch_op.drop_index("ix_executions_created")
        batch_op.drop_index(
            "ix_executions_active",
            postgresql_where=sa.text("status IN ('queued', 'running', 'retrying')"),
            sqlite_where=sa.text("status IN ('queued', 'running', 'retrying')"),
        )

    op.drop_table("executions")
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_triggers_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_triggers_updated_at"))
        batch_op.drop_index(batch_op.f("ix_triggers_state"))

    op.drop_table("triggers")
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflows_owner_user_id"))

    op.drop_table("workflows")
    with op.batch_alter_table("scheduler_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduler_instances_last_heartbeat"))

    op.drop_table("scheduler_instances")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
