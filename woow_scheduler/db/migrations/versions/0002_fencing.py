"""Fencing: executions record the lock they hold (key, policy, fence) and may end ``lock_lost``;
``due_at`` says when a ``retrying`` row's next attempt is due (the reaper re-sends overdue ones).

Revision ID: 0002_fencing
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import woow_scheduler.db.types

revision: str = "0002_fencing"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("queued", "running", "succeeded", "failed", "skipped", "retrying", "timed_out")
NEW = (*OLD, "lock_lost")


def _status(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="execution_status", native_enum=False, create_constraint=True, length=20)


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lock_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lock_policy", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("fence", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("due_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column("status", existing_type=_status(OLD), type_=_status(NEW), existing_nullable=False)


def downgrade() -> None:
    op.execute("UPDATE executions SET status = 'failed' WHERE status = 'lock_lost'")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=_status(NEW), type_=_status(OLD), existing_nullable=False)
        batch_op.drop_column("due_at")
        batch_op.drop_column("fence")
        batch_op.drop_column("lock_policy")
        batch_op.drop_column("lock_key")
