from __future__ import annotations

import uuid

from sqlalchemy import inspect

from woow_scheduler.db import Base, Database
from woow_scheduler.db.migrate import current_revision, downgrade, head_revision, upgrade

TABLES = {"workflows", "triggers", "executions", "scheduler_instances", "api_tokens"}


def _roundtrip(url: str) -> None:
    db = Database(url)
    try:
        assert current_revision(db) is None
        upgrade(db)
        assert current_revision(db) == head_revision(db)
        insp = inspect(db.engine)
        assert set(insp.get_table_names()) >= TABLES
        # the migrations build exactly the models' columns
        for table in Base.metadata.sorted_tables:
            migrated = {c["name"] for c in insp.get_columns(table.name)}
            assert migrated == set(table.columns.keys()), table.name
        uniques = {u["name"] for u in insp.get_unique_constraints("executions")}
        assert "uq_executions_fire" in uniques
        downgrade(db, "base")
        assert TABLES.isdisjoint(inspect(db.engine).get_table_names())
        upgrade(db)
        assert current_revision(db) == head_revision(db)
    finally:
        db.dispose()


def test_upgrade_downgrade_postgresql(empty_pg_url: str) -> None:
    _roundtrip(empty_pg_url)


def test_upgrade_downgrade_sqlite(sqlite_url: str) -> None:
    _roundtrip(sqlite_url)


def test_no_model_change_without_a_migration(empty_pg_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = Database(empty_pg_url)
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        db.dispose()


def test_0005_keeps_existing_executions_unmarked(empty_pg_url: str) -> None:
    """Rows written before 0005 read as plain fires: not backfill, no jitter offset; and a worker of
    the previous version (which names no new column) can still insert."""
    from sqlalchemy import text

    db = Database(empty_pg_url)
    try:
        upgrade(db, "0004")
        wf, old, new = (uuid.uuid4() for _ in range(3))
        insert = (
            "INSERT INTO executions (id, workflow_id, status, attempt, steps, created_at, updated_at) "
            "VALUES (:id, :wf, 'succeeded', 1, '[]', now(), now())"
        )
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO workflows (id, name, description, steps, concurrency, max_retries, retry_delay,"
                    " retry_backoff, labels, created_at, updated_at) VALUES (:id, 'w', '', '[]', 'forbid', 0, 1,"
                    " false, '{}', now(), now())"
                ),
                {"id": wf},
            )
            conn.execute(text(insert), {"id": old, "wf": wf})
        upgrade(db)
        with db.engine.begin() as conn:
            conn.execute(text(insert), {"id": new, "wf": wf})
            rows = conn.execute(text("SELECT backfill, jitter_ms FROM executions")).all()
        assert [tuple(r) for r in rows] == [(False, None), (False, None)]
        downgrade(db, "0004")
        assert "backfill" not in {c["name"] for c in inspect(db.engine).get_columns("executions")}
    finally:
        db.dispose()


def _status_check(db: Database) -> str:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conname = 'ck_executions_execution_status'"
                )
            ).scalar_one()
        )


def _accepted_statuses(db: Database) -> set[str]:
    """The statuses the executions CHECK lets in (each tried in a transaction that is rolled back)."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from woow_scheduler.enums import ExecutionStatus

    accepted = set()
    with db.engine.connect() as conn:
        for status in [*(s.value for s in ExecutionStatus), "bogus", "RUNNING", ""]:
            trans = conn.begin()
            try:
                wf = uuid.uuid4()
                conn.execute(
                    text(
                        "INSERT INTO workflows (id, name, description, steps, concurrency, max_retries, retry_delay,"
                        " retry_backoff, labels, created_at, updated_at) VALUES (:id, 'w', '', '[]', 'forbid', 0, 1,"
                        " false, '{}', now(), now())"
                    ),
                    {"id": wf},
                )
                conn.execute(
                    text(
                        "INSERT INTO executions (id, workflow_id, status, attempt, steps, created_at, updated_at)"
                        " VALUES (:id, :wf, :status, 1, '[]', now(), now())"
                    ),
                    {"id": uuid.uuid4(), "wf": wf, "status": status},
                )
                accepted.add(status)
            except IntegrityError as exc:
                assert "ck_executions_execution_status" in str(exc), exc
            finally:
                trans.rollback()
    return accepted


def _one_row_per_status(db: Database) -> None:
    from sqlalchemy import text

    from woow_scheduler.enums import ExecutionStatus

    wf = uuid.uuid4()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workflows (id, name, description, steps, concurrency, max_retries, retry_delay,"
                " retry_backoff, labels, created_at, updated_at) VALUES (:id, 'kept', '', '[]', 'forbid', 0, 1,"
                " false, '{}', now(), now())"
            ),
            {"id": wf},
        )
        for status in ExecutionStatus:
            conn.execute(
                text(
                    "INSERT INTO executions (id, workflow_id, status, attempt, steps, created_at, updated_at)"
                    " VALUES (:id, :wf, :status, 1, '[]', now(), now())"
                ),
                {"id": uuid.uuid4(), "wf": wf, "status": status.value},
            )


def test_0006_status_check_is_one_constant_and_allows_the_same_statuses(empty_pg_url: str) -> None:
    """0006 rewrites the status CHECK as one text[] constant (PostgreSQL re-reads CHECK expressions
    on every INSERT/UPDATE: one node instead of eight casts and a coercion), letting in exactly the
    statuses of ExecutionStatus before and after; the downgrade restores SQLAlchemy's IN form."""
    from woow_scheduler.enums import ExecutionStatus

    every = {s.value for s in ExecutionStatus}
    db = Database(empty_pg_url)
    try:
        upgrade(db, "0005")
        before = _status_check(db)
        assert "ARRAY[" in before
        assert _accepted_statuses(db) == every
        _one_row_per_status(db)  # the upgrade and the downgrade check existing rows
        upgrade(db)
        assert current_revision(db) == "0006"
        check = _status_check(db)
        assert "ARRAY[" not in check and "::text[]" in check, check
        assert _accepted_statuses(db) == every
        downgrade(db, "0005")
        assert _status_check(db) == before  # exactly what 0002 (sa.Enum) wrote
        assert _accepted_statuses(db) == every
        upgrade(db)
        assert current_revision(db) == head_revision(db)
    finally:
        db.dispose()
