"""Issue 17: what history shows of a fire's origin -- ``executions.backfill`` (enqueued by a
backfill; ``false`` for existing rows) and ``executions.jitter_ms`` (the dispatch delay beat gave
a jittered fire; null for existing rows and fires without jitter).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # additive and with a server default: workers of the previous version keep inserting rows
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backfill", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("jitter_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("jitter_ms")
        batch_op.drop_column("backfill")
