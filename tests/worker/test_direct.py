"""woow_scheduler.db.direct: Core statements run straight on psycopg behave like Connection.execute."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy import exc as sa_exc

from tests.worker.conftest import make_trigger, make_workflow
from woow_scheduler.db import Database, direct
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.db.models import Execution
from woow_scheduler.enums import ExecutionStatus, TriggerState
from woow_scheduler.worker import history as h


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_size=1, max_overflow=0)


TRIGGERS: dict[uuid.UUID, uuid.UUID] = {}


def _wf_def(db: Database) -> h.WorkflowDef:
    wf = make_workflow(db, [{"name": "s", "type": "log", "config": {"message": "x"}}])
    TRIGGERS[wf.id] = make_trigger(db, wf).id
    with db.engine.connect() as conn:
        found = h.load_workflow(conn, wf.id)
    assert found is not None
    return found


def _fire(wf: h.WorkflowDef, when: datetime) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "workflow_id": wf.id,
        "trigger_id": TRIGGERS[wf.id],
        "scheduled_for": when,
        "status": ExecutionStatus.RUNNING,
        "steps": [{"name": "s", "output": {"k": "v"}}],
    }


def test_direct_writes_what_core_would_write(db: Database, pg_url: str) -> None:
    wf = _wf_def(db)
    engine = _engine(pg_url)
    when = datetime(2031, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with engine.connect() as conn:
        assert direct.supports_direct(conn)
        values = _fire(wf, when)
        assert h.insert_fire_checked(conn, values, wf)  # typed params: uuid, aware datetime, enum, jsonb
        ok = h.transition(
            conn,
            values["id"],  # type: ignore[arg-type]
            from_status=[ExecutionStatus.QUEUED, ExecutionStatus.RUNNING],
            values={"status": ExecutionStatus.SUCCEEDED, "steps": [{"name": "s", "output": {"n": 1}}]},
        )
        assert ok
        assert not h.transition(
            conn,
            values["id"],
            from_status=ExecutionStatus.RUNNING,
            values={"attempt": 9},  # type: ignore[arg-type]
        )
    with db.session() as s:
        row = s.scalars(select(Execution).where(Execution.id == values["id"])).one()
        assert row.status == ExecutionStatus.SUCCEEDED and row.attempt == 0
        assert row.scheduled_for == when and row.steps == [{"name": "s", "output": {"n": 1}}]
    engine.dispose()


def test_direct_errors_are_sqlalchemys_and_a_disconnect_invalidates(db: Database, pg_url: str) -> None:
    wf = _wf_def(db)
    engine = _engine(pg_url)
    with engine.connect() as conn:
        with pytest.raises(sa_exc.ArgumentError, match="missing value for bind parameter"):
            direct.execute(conn, h._INSERT_FIRE_CHECKED[("postgresql", False)], {"id": uuid.uuid4()})
        bad = _fire(wf, datetime(2031, 1, 1, tzinfo=UTC)) | {"status": "no-such-status"}
        with pytest.raises(sa_exc.StatementError, match="not among the defined enum values"):
            h.insert_fire_checked(conn, bad, wf)  # rejected by the column type, before the database
        too_long = _fire(wf, datetime(2031, 1, 1, tzinfo=UTC)) | {"user_id": "u" * 201}
        with pytest.raises(sa_exc.DataError):  # rejected by PostgreSQL, translated as SQLAlchemy does
            h.insert_fire_checked(conn, too_long, wf)
    with engine.connect() as conn:
        pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with db.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            admin.commit()
        with pytest.raises(sa_exc.OperationalError) as caught:
            h.insert_fire_checked(conn, _fire(wf, datetime(2031, 1, 3, tzinfo=UTC)), wf)
        assert caught.value.connection_invalidated
    with engine.connect() as conn:  # the pool hands out a fresh connection, not the dead one
        assert h.insert_fire_checked(conn, _fire(wf, datetime(2031, 1, 4, tzinfo=UTC)), wf)
    engine.dispose()


def test_a_connection_left_mid_command_is_invalidated_not_pooled(db: Database, pg_url: str) -> None:
    """A backend killed under load once surfaced as "another command is already in progress", which
    SQLAlchemy's disconnect test does not know: the direct path must still invalidate the connection
    (its protocol state is unknown), or the pool hands the broken connection to the next fire."""
    wf = _wf_def(db)
    engine = _engine(pg_url)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.pgconn.send_query(b"SELECT pg_sleep(0.05)")  # type: ignore[union-attr]  # a command never read
        with pytest.raises(sa_exc.OperationalError, match="another command is already in progress") as caught:
            h.insert_fire_checked(conn, _fire(wf, datetime(2031, 1, 5, tzinfo=UTC)), wf)
        assert caught.value.connection_invalidated
    with engine.connect() as conn:  # a fresh connection, not the one still in its command
        assert conn.connection.dbapi_connection is not raw
        assert h.insert_fire_checked(conn, _fire(wf, datetime(2031, 1, 6, tzinfo=UTC)), wf)
    engine.dispose()


def test_other_backends_go_through_connection_execute(sqlite_url: str) -> None:
    sdb = Database(sqlite_url)
    upgrade(sdb)
    wf = _wf_def(sdb)
    engine = create_engine(sqlite_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        assert not direct.supports_direct(conn)
        values = _fire(wf, datetime(2031, 1, 2, tzinfo=UTC))
        assert h.insert_fire_checked(conn, values, wf)
        assert not h.insert_fire_checked(conn, values | {"id": uuid.uuid4()}, wf)  # same fire: conflict
        assert h.transition(conn, values["id"], from_status=ExecutionStatus.RUNNING, values={"attempt": 2})  # type: ignore[arg-type]
    engine.dispose()
    sdb.dispose()


def test_direct_reads_match_core_reads(db: Database, pg_url: str) -> None:
    """The worker's reads on the direct path (autocommit) give what Core gives inside a transaction;
    the definition read with the fire's look equals the two separate reads."""
    wf = _wf_def(db)
    tid = TRIGGERS[wf.id]
    when = datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    engine = _engine(pg_url)
    with engine.connect() as conn:
        values = _fire(wf, when) | {"fence": 7, "lock_key": "k", "lock_token": "t", "user_id": "u"}
        assert h.insert_fire_checked(conn, values, wf)
        cases = [(wf.id, tid, when), (wf.id, tid, datetime(2031, 1, 1, tzinfo=UTC)), (wf.id, uuid.uuid4(), when)]
        direct_reads = [(h.load_workflow(conn, w), h.look_fire_with_workflow(conn, w, t, sf)) for w, t, sf in cases]
        assert h.look_fire_with_workflow(conn, uuid.uuid4(), tid, when) == (None, None, None)  # workflow gone
    with db.engine.connect() as core:  # a transaction: the ordinary Core path
        core_reads = [(h.load_workflow(core, w), h.look_fire_with_workflow(core, w, t, sf)) for w, t, sf in cases]
    for (loaded, together), (core_loaded, core_together) in zip(direct_reads, core_reads, strict=True):
        assert loaded == core_loaded == together[0]
        assert together == core_together
    found = direct_reads[0][1][2]
    assert found is not None and found.scheduled_for == when and found.scheduled_for.utcoffset() is not None
    assert found.status is ExecutionStatus.RUNNING and found.fence == 7 and found.user_id == "u"
    assert direct_reads[0][1][1] is TriggerState.NORMAL
    assert direct_reads[1][1][2] is None and direct_reads[2][1][1:] == (None, None)  # no row; trigger unknown
    engine.dispose()
