"""Issue 15: the ``executions.status`` CHECK in a form PostgreSQL checks without re-reading a list.

PostgreSQL re-reads a table's CHECK expressions from their stored text on every ``INSERT`` and
``UPDATE`` (``ExecConstraints`` -> ``stringToNode``, then constant folding), prepared statement
or not.  The form SQLAlchemy's ``Enum`` writes, ``status IN ('queued', ...)``, is stored as
``status::text = ANY (ARRAY['queued'::varchar, ...]::text[])``: eight constants plus an array
coercion to read and fold each time, about 10 % of the backend CPU of a worker's claim ``INSERT``
and outcome ``UPDATE`` (perf, docs/performance.md).  The same allowed set written as one
``text[]`` constant is read as one node and needs no folding: about half of that cost goes.

Same name, same allowed values (so a later migration that alters the status type drops it by
name as before); PostgreSQL only: SQLite keeps the ``IN`` form, which it evaluates compiled.
One ``ALTER TABLE`` swaps the two under one exclusive lock of ``executions`` and checks every
existing row once (one sequential scan: workers wait for it, as for any migration of the table).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_executions_execution_status"
STATUSES = ("queued", "running", "succeeded", "failed", "skipped", "retrying", "timed_out", "lock_lost")


def _replace(check: str) -> None:
    # one ALTER: the old and the new constraint never both miss, and every row is checked once
    op.execute(f"ALTER TABLE executions DROP CONSTRAINT {NAME}, ADD CONSTRAINT {NAME} CHECK ({check})")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _replace("status::text = ANY ('{" + ",".join(STATUSES) + "}'::text[])")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _replace("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")")  # what sa.Enum writes
