"""Named calendars shared by triggers (issue 17): the ``calendars`` table and ``triggers.calendar_id``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import woow_scheduler.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint("name", name=op.f("uq_calendars_name")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_triggers_calendar_id"), ["calendar_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_triggers_calendar_id_calendars"), "calendars", ["calendar_id"], ["id"], ondelete="RESTRICT"
        )


def downgrade() -> None:
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_triggers_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_triggers_calendar_id"))
        batch_op.drop_column("calendar_id")
    op.drop_table("calendars")
