"""execute_workflow run in-process through Celery's apply() (real PostgreSQL and Redis)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Celery

from tests.worker.conftest import executions, make_trigger, make_workflow
from woow_scheduler.db import Database
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.enums import ConcurrencyPolicy, ExecutionStatus
from woow_scheduler.keys import Keys
from woow_scheduler.messaging.app import TASK_EXECUTE
from woow_scheduler.messaging.payload import FirePayload
from woow_scheduler.messaging.publish import publish_options, time_limits
from woow_scheduler.service import Service
from woow_scheduler.settings import Settings, load_settings
from woow_scheduler.worker import get_app
from woow_scheduler.worker.context import WorkflowCache
from woow_scheduler.worker.history import WorkflowDef
from woow_scheduler.worker.lock import WorkflowLock, lock_holder

FIRE = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


def apply(app: Celery, **kwargs: Any) -> Any:
    return app.tasks[TASK_EXECUTE].apply(kwargs=kwargs).get()


def fire_kwargs(wf: Any, tr: Any, when: datetime = FIRE) -> dict[str, Any]:
    return FirePayload(workflow_id=wf.id, trigger_id=tr.id, user_id="u", scheduled_for=when).to_kwargs()


def test_get_app_is_lazy_and_resolves_for_celery_cli(wsettings: Settings) -> None:
    from celery.app.utils import find_app

    import woow_scheduler.worker as worker_pkg

    assert "app" not in vars(worker_pkg)  # nothing built on import
    app = get_app(wsettings)
    assert get_app(wsettings) is app
    assert TASK_EXECUTE in app.tasks
    found = find_app("woow_scheduler.worker")  # what `celery -A woow_scheduler.worker` does
    assert isinstance(found, Celery) and TASK_EXECUTE in found.tasks


def test_run_records_success_with_worker_and_task_id(app: Celery, db: Database) -> None:
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "hello"}}])
    tr = make_trigger(db, wf)
    result = apply(app, **fire_kwargs(wf, tr))
    assert result["outcome"] == "succeeded"
    (row,) = executions(db, wf.id)
    assert row.status == ExecutionStatus.SUCCEEDED
    assert row.started_at and row.finished_at and row.duration_ms is not None
    assert row.worker and row.celery_task_id and row.lock_token
    assert row.scheduled_for == FIRE and row.user_id == "u" and row.trigger_id == tr.id
    assert row.steps[0]["status"] == "succeeded"


def test_forbid_records_skipped_naming_the_holder(
    app: Celery, db: Database, redis_client: redis.Redis, key_prefix: str
) -> None:
    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    holder = uuid.uuid4()
    lock = WorkflowLock(redis_client, Keys(key_prefix).workflow_lock(wf.id), 30, owner=str(holder))
    assert lock.acquire()
    assert lock_holder(redis_client, Keys(key_prefix), wf.id) == str(holder)
    assert apply(app, **fire_kwargs(wf, tr))["outcome"] == "skipped"
    (row,) = executions(db, wf.id)
    assert row.status == ExecutionStatus.SKIPPED
    assert str(holder) in (row.error or "")
    lock.release()
    # the same fire again is a duplicate, not a second row
    assert apply(app, **fire_kwargs(wf, tr))["outcome"] == "duplicate"
    assert len(executions(db, wf.id)) == 1


def test_allow_policy_takes_no_workflow_lock(
    app: Celery, db: Database, redis_client: redis.Redis, key_prefix: str
) -> None:
    wf = make_workflow(
        db, [{"name": "hi", "type": "log", "config": {"message": "x"}}], concurrency=ConcurrencyPolicy.ALLOW
    )
    tr = make_trigger(db, wf)
    lock = WorkflowLock(redis_client, Keys(key_prefix).workflow_lock(wf.id), 30, owner="other")
    assert lock.acquire()
    assert apply(app, **fire_kwargs(wf, tr))["outcome"] == "succeeded"


def test_bad_payloads_and_missing_workflows_are_dropped(app: Celery, db: Database) -> None:
    assert apply(app, workflow_id="not-a-uuid")["outcome"] == "dropped"
    wf = make_workflow(db, [])
    assert apply(app, workflow_id=str(wf.id), version=99)["reason"].startswith("version: unknown payload version 99")
    assert apply(app, workflow_id=str(wf.id), forged="x")["outcome"] == "dropped"
    gone = str(uuid.uuid4())
    assert (
        apply(app, workflow_id=gone, trigger_id=str(uuid.uuid4()), scheduled_for=FIRE.isoformat(), user_id=None)[
            "reason"
        ]
        == "workflow not found"
    )
    assert executions(db, wf.id) == []


def test_timeout_ends_timed_out_and_releases_the_lock(
    app: Celery, db: Database, redis_client: redis.Redis, key_prefix: str
) -> None:
    wf = make_workflow(db, [{"name": "zz", "type": "sleep", "config": {"seconds": 10}}], timeout=0.5)
    tr = make_trigger(db, wf)
    assert apply(app, **fire_kwargs(wf, tr))["outcome"] == "timed_out"
    (row,) = executions(db, wf.id)
    assert row.status == ExecutionStatus.TIMED_OUT and "timed out after 0.5s" in (row.error or "")
    assert lock_holder(redis_client, Keys(key_prefix), wf.id) is None


def test_publish_options_name_the_workflow_and_bound_the_time(wsettings: Settings) -> None:
    opts = publish_options(wsettings, workflow_name="nightly", timeout=60)
    assert opts["shadow"] == "workflow:nightly" and opts["queue"] == wsettings.queue
    assert 60 < opts["soft_time_limit"] < opts["time_limit"]
    assert time_limits(None) == {}


# -- definitions kept between fires ----------------------------------------------------------------


def _step_messages(db: Database, workflow_id: uuid.UUID) -> list[str]:
    return [row.steps[0]["output"]["message"] for row in executions(db, workflow_id)]


def _log_step(message: str) -> list[dict[str, Any]]:
    return [{"name": "s", "type": "log", "config": {"message": message}}]


def _service_workflow(db: Database, settings: Settings, name: str, message: str = "x") -> tuple[Service, Any, Any]:
    """A workflow made through the service (so edits change ``updated_at`` as in production) and a trigger."""
    svc = Service(db, settings)
    svc.create_workflow({"name": name, "steps": _log_step(message)})
    wf = svc.get_workflow(name)
    return svc, wf, make_trigger(db, wf)


def test_an_edit_applies_to_the_next_fire_although_workers_keep_definitions(
    app: Celery, db: Database, wsettings: Settings
) -> None:
    svc, wf, tr = _service_workflow(db, wsettings, "kept", "v1")
    assert apply(app, **fire_kwargs(wf, tr, FIRE))["outcome"] == "succeeded"  # definition now kept
    svc.update_workflow("kept", {"steps": _log_step("v2")})
    assert apply(app, **fire_kwargs(wf, tr, FIRE + timedelta(seconds=1)))["outcome"] == "succeeded"
    assert _step_messages(db, wf.id) == ["v1", "v2"]
    # a duplicate delivery of the first fire is still a duplicate, not a run with the new definition
    assert apply(app, **fire_kwargs(wf, tr, FIRE))["outcome"] == "duplicate"
    assert len(executions(db, wf.id)) == 2


def test_a_policy_change_applies_to_the_next_fire(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    svc, wf, tr = _service_workflow(db, wsettings, "pol")
    lock = WorkflowLock(redis_client, Keys(key_prefix).workflow_lock(wf.id), 30, owner="someone")
    assert lock.acquire()
    assert apply(app, **fire_kwargs(wf, tr, FIRE))["outcome"] == "skipped"  # forbid, kept
    svc.update_workflow("pol", {"concurrency": "allow"})
    assert apply(app, **fire_kwargs(wf, tr, FIRE + timedelta(seconds=1)))["outcome"] == "succeeded"
    assert lock.owned()  # 'allow' ran beside the holder without touching its lock
    lock.release()


def test_a_workflow_deleted_after_its_definition_was_kept_drops_the_fire(
    app: Celery, db: Database, wsettings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    svc, wf, tr = _service_workflow(db, wsettings, "gone")
    assert apply(app, **fire_kwargs(wf, tr, FIRE))["outcome"] == "succeeded"
    svc.delete_workflow("gone")
    result = apply(app, **fire_kwargs(wf, tr, FIRE + timedelta(seconds=1)))
    assert result == {"outcome": "dropped", "reason": "workflow not found"}
    assert executions(db, wf.id) == []
    assert lock_holder(redis_client, Keys(key_prefix), wf.id) is None  # the lock taken for it was released


def test_kept_definitions_expire_and_are_bounded() -> None:
    cache = WorkflowCache(size=2, max_age=60)
    defs = [
        WorkflowDef(uuid.uuid4(), f"w{i}", [], ConcurrencyPolicy.FORBID, 0, 15.0, False, None, None) for i in range(3)
    ]
    for d in defs:
        cache.put(d)
    assert cache.get(defs[0].id) is None and cache.get(defs[2].id) is defs[2]  # oldest evicted
    stale = WorkflowCache(max_age=0.0)
    stale.put(defs[0])
    time.sleep(0.01)
    assert stale.get(defs[0].id) is None


def test_fires_run_and_stay_idempotent_on_sqlite(sqlite_url: str, redis_url: str, key_prefix: str) -> None:
    """The embedded mode's database: the checked insert and the transitions work on SQLite too."""
    settings = load_settings(database_url=sqlite_url, redis_url=redis_url, key_prefix=key_prefix, queue="q-sqlite")
    sdb = Database(sqlite_url)
    upgrade(sdb)
    app = get_app(settings)
    try:
        svc, wf, tr = _service_workflow(sdb, settings, "lite", "a")
        assert apply(app, **fire_kwargs(wf, tr, FIRE))["outcome"] == "succeeded"
        assert apply(app, **fire_kwargs(wf, tr, FIRE))["outcome"] == "duplicate"
        svc.update_workflow("lite", {"steps": _log_step("b")})
        assert apply(app, **fire_kwargs(wf, tr, FIRE + timedelta(seconds=1)))["outcome"] == "succeeded"
        assert _step_messages(sdb, wf.id) == ["a", "b"]
    finally:
        app.close()
        sdb.dispose()


def test_backfill_and_jitter_marks_are_recorded_and_shown_in_history(
    app: Celery, db: Database, wsettings: Settings, monkeypatch: Any
) -> None:
    import json

    from click.testing import CliRunner

    from woow_scheduler.cli import cli

    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    marked = {
        FIRE: {"backfill": True},
        FIRE + timedelta(minutes=1): {"jitter_ms": 1234},
        FIRE + timedelta(minutes=2): {},
        FIRE + timedelta(minutes=3): {"jitter_ms": 30 * 86400 * 1000 - 1},  # a 30d jitter: past 32 bits
    }
    for when, marks in marked.items():
        kwargs = FirePayload(workflow_id=wf.id, trigger_id=tr.id, scheduled_for=when, **marks).to_kwargs()
        assert apply(app, **kwargs)["outcome"] == "succeeded"
    rows = {r.scheduled_for: r for r in executions(db, wf.id)}
    assert [(rows[w].backfill, rows[w].jitter_ms) for w in marked] == [
        (True, None),
        (False, 1234),
        (False, None),
        (False, 30 * 86400 * 1000 - 1),
    ]
    for name, value in (("DATABASE_URL", wsettings.database_url), ("REDIS_URL", wsettings.redis_url),
                        ("KEY_PREFIX", wsettings.key_prefix)):  # fmt: skip
        monkeypatch.setenv(f"WOOW_{name}", value)
    runner = CliRunner()
    out = runner.invoke(cli, ["history", "--workflow", str(wf.id), "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    views = json.loads(out.stdout)
    shown = {datetime.fromisoformat(v["scheduled_for"]): (v["backfill"], v["jitter_ms"]) for v in views}
    assert shown == {w: (rows[w].backfill, rows[w].jitter_ms) for w in marked}
    monkeypatch.setenv("COLUMNS", "250")
    table = runner.invoke(cli, ["history", "--workflow", str(wf.id)], catch_exceptions=False).stdout
    assert "backfill" in table and "+1.234s jitter" in table
    one = runner.invoke(cli, ["execution", "show", str(rows[FIRE + timedelta(minutes=1)].id)]).stdout
    fields = dict(line.split(None, 1) for line in one.splitlines()[:16] if " " in line)
    assert fields["backfill"].strip() == "no" and fields["jitter"].strip() == "+1.234s", one


def test_a_worker_process_keeps_one_connection_between_runs_and_never_a_broken_one(app: Celery, db: Database) -> None:
    from sqlalchemy import event, text

    from woow_scheduler.worker.context import settings_of, worker_context

    wf = make_workflow(db, [{"name": "hi", "type": "log", "config": {"message": "x"}}])
    tr = make_trigger(db, wf)
    ctx = worker_context(settings_of(app))
    checkouts: list[int] = []
    event.listen(ctx.engine, "checkout", lambda *_: checkouts.append(1))
    for i in range(3):
        assert apply(app, **fire_kwargs(wf, tr, FIRE + timedelta(minutes=i)))["outcome"] == "succeeded"
    assert len(checkouts) <= 1  # one checkout for the process (none if it kept one already), not one per run
    kept = ctx.kept_conn
    assert kept is not None and not kept.in_transaction()
    backend = kept.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with db.engine.connect() as admin:  # the kept connection breaks between two runs
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    # the next run meets the broken connection, drops it and runs on a new one (the task's retry)
    assert apply(app, **fire_kwargs(wf, tr, FIRE + timedelta(minutes=5)))["outcome"] == "succeeded"
    assert ctx.kept_conn is not None and ctx.kept_conn is not kept
    assert ctx.kept_conn.connection.dbapi_connection.info.backend_pid != backend  # type: ignore[union-attr]
    assert [r.status for r in executions(db, wf.id)] == [ExecutionStatus.SUCCEEDED] * 4
