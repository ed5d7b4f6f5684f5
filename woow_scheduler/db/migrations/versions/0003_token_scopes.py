"""Token scopes and expiry: ``api_tokens.scopes`` (space-separated) and ``api_tokens.expires_at``;
workflow names unique per owner instead of globally.

Existing tokens keep what they could do: ``read write``, plus ``admin`` for admin tokens.

Revision ID: 0003
Revises: 0002_fencing
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import woow_scheduler.db.types

revision: str = "0003"
down_revision: str | None = "0002_fencing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scopes", sa.String(length=500), server_default="read write", nullable=False)
        )
        batch_op.add_column(
            sa.Column("expires_at", woow_scheduler.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    tokens = sa.table("api_tokens", sa.column("scopes", sa.String), sa.column("is_admin", sa.Boolean))
    op.execute(tokens.update().where(tokens.c.is_admin.is_(True)).values(scopes="admin read write"))
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_constraint("uq_workflows_name", type_="unique")
        batch_op.create_unique_constraint("uq_workflows_owner_user_id_name", ["owner_user_id", "name"])


def downgrade() -> None:
    # fails (as it must) while two owners share a workflow name
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_constraint("uq_workflows_owner_user_id_name", type_="unique")
        batch_op.create_unique_constraint("uq_workflows_name", ["name"])
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scopes")
