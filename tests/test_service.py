"""The service layer's rules, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.errors import (
    Conflict,
    InvalidCronExpression,
    InvalidInput,
    InvalidTriggerSpec,
    InvalidWorkflow,
    NotFound,
)
from woow_scheduler.service import Service
from woow_scheduler.settings import load_settings

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
LOG_STEP = {"name": "hello", "type": "log", "config": {"message": "hi"}}


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Database]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        database = Database(url)
    else:
        database = Database(f"sqlite:///{tmp_path / 'svc.db'}")
        upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def svc(any_db: Database) -> Service:
    settings = load_settings(database_url=any_db.url)
    return Service(any_db, settings, clock=lambda: NOW)


def counts(db: Database) -> tuple[int, int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Workflow)) or 0,
            s.scalar(select(func.count()).select_from(Trigger)) or 0,
            s.scalar(select(func.count()).select_from(Execution)) or 0,
        )


def test_create_show_list_update_delete_workflow(svc: Service, any_db: Database) -> None:
    wf = svc.create_workflow({"name": "report", "description": "d", "steps": [LOG_STEP], "max_retries": 2})
    assert wf.concurrency == "forbid" and wf.retry_delay == 15.0 and wf.max_retries == 2
    assert svc.get_workflow("report").id == wf.id
    assert svc.get_workflow(str(wf.id)).name == "report"
    assert svc.get_workflow(str(wf.id)[:8]).name == "report"  # id prefix as shown in tables
    assert [w.name for w in svc.list_workflows()] == ["report"]
    up = svc.update_workflow("report", {"concurrency": "queue", "timeout": 30})
    assert up.concurrency == "queue" and up.timeout == 30
    svc.delete_workflow("report")
    assert counts(any_db) == (0, 0, 0)
    with pytest.raises(NotFound, match="workflow: 'report' not found"):
        svc.get_workflow("report")


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"name": "bad name"}, InvalidWorkflow, r"^name: 'bad name' is not a valid workflow name"),
        ({"name": "x", "concurrency": "sometimes"}, InvalidWorkflow, r"^concurrency: "),
        ({"name": "x", "max_retries": -1}, InvalidWorkflow, r"^max_retries: .*greater than or equal to 0"),
        ({"name": "x", "timeout": 0}, InvalidWorkflow, r"^timeout: "),
        ({"name": "x", "colour": "red"}, InvalidWorkflow, r"^colour: unknown field"),
        ({"name": "x", "steps": [{"name": "a", "type": "nope"}]}, InvalidWorkflow,
         r"^steps\[0\]\.type: unknown strategy 'nope' \(installed: "),
        ({"name": "x", "steps": [{"name": "a", "type": "log", "config": {}}]}, InvalidWorkflow,
         r"^steps\[0\]\.config\.message: is required"),
        ({"name": "x", "steps": [{"name": "a", "type": "log", "config": {"message": "m", "lvl": 1}}]},
         InvalidWorkflow, r"^steps\[0\]\.config\.lvl: unknown key"),
        ({"name": "x", "steps": [LOG_STEP, LOG_STEP]}, InvalidWorkflow, r"^steps\[1\]\.name: 'hello' is used"),
        ({"name": "x", "steps": "log"}, InvalidWorkflow, r"^steps: "),
        ({"name": "x", "timeout": 7200}, InvalidWorkflow, r"^timeout: 7200s is above WOOW_VISIBILITY_TIMEOUT"),
    ],
)
def test_invalid_workflow_is_rejected_and_writes_nothing(
    svc: Service, any_db: Database, data: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        svc.create_workflow(data)
    assert "\n" not in str(info.value)
    assert counts(any_db) == (0, 0, 0)


def test_duplicate_workflow_name(svc: Service, any_db: Database) -> None:
    svc.create_workflow({"name": "a"})
    with pytest.raises(Conflict, match="name: a workflow named 'a' already exists"):
        svc.create_workflow({"name": "a"})
    assert counts(any_db) == (1, 0, 0)


def test_add_triggers_of_each_type(svc: Service) -> None:
    svc.create_workflow({"name": "wf", "steps": [LOG_STEP]})
    cron = svc.add_trigger("wf", {"type": "cron", "expression": "0 0 9 ? * MON-FRI", "timezone": "Europe/Berlin"},
                           user_id="alice")
    assert cron.name == "cron-1" and cron.state == "NORMAL" and cron.created_by == "alice"
    assert cron.next_fire_time == datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(days=1)  # 09:00 CET Tuesday
    every = svc.add_trigger("wf", {"type": "interval", "every": "5m"}, name="tick")
    assert every.next_fire_time == NOW + timedelta(minutes=5)
    once = svc.add_trigger("wf", {"type": "once", "run_at": "2026-03-02T10:00:00+01:00"})
    assert once.next_fire_time == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert [t.name for t in svc.list_triggers(workflow="wf")] == ["cron-1", "once-1", "tick"]
    assert [t.name for t in svc.list_triggers(state="normal")] == ["cron-1", "once-1", "tick"]
    times = svc.next_fire_times("tick", 3)
    assert times == [NOW + timedelta(minutes=5 * k) for k in (1, 2, 3)]


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ({"type": "cron", "expression": "0 0 9 ? * MON-FRX"}, InvalidCronExpression, r"day-of-week"),
        ({"type": "cron", "expression": "0 0 9 * * ?", "timezone": "Mars/Base"}, InvalidTriggerSpec, r"timezone"),
        ({"type": "interval", "every": "0s"}, InvalidTriggerSpec, r"^every: "),
        ({"type": "interval", "every": -5}, InvalidTriggerSpec, r"^every: "),
        ({"type": "once", "run_at": "2020-01-01T00:00:00Z"}, InvalidTriggerSpec, r"^run_at: "),
        ({"type": "interval", "every": 60, "start_at": "2026-04-01T00:00:00Z", "end_at": "2026-03-01T00:00:00Z"},
         InvalidTriggerSpec, r"^end_at: "),
        ({"type": "weekly"}, InvalidTriggerSpec, r"type"),
    ],
)
def test_invalid_trigger_is_rejected_and_writes_nothing(
    svc: Service, any_db: Database, spec: dict[str, Any], error: type[Exception], message: str
) -> None:
    svc.create_workflow({"name": "wf"})
    with pytest.raises(error, match=message) as info:
        svc.add_trigger("wf", spec)
    assert isinstance(info.value, InvalidInput)
    assert "\n" not in str(info.value)
    assert counts(any_db) == (1, 0, 0)


def test_trigger_for_unknown_workflow(svc: Service, any_db: Database) -> None:
    with pytest.raises(NotFound, match="workflow: 'ghost' not found"):
        svc.add_trigger("ghost", {"type": "interval", "every": 60})
    assert counts(any_db) == (0, 0, 0)


def test_pause_resume_delete_and_versions(svc: Service) -> None:
    svc.create_workflow({"name": "wf"})
    tr = svc.add_trigger("wf", {"type": "interval", "every": 60})
    paused = svc.pause_trigger(str(tr.id))
    assert paused.state == "PAUSED" and paused.version == tr.version + 1
    assert svc.pause_trigger(str(tr.id)).version == paused.version  # idempotent, no bump
    resumed = svc.resume_trigger("wf/interval-1")
    assert resumed.state == "NORMAL" and resumed.version == paused.version + 1
    svc.delete_trigger(str(tr.id))
    with pytest.raises(NotFound):
        svc.get_trigger(str(tr.id))


def test_once_in_the_past_only_when_allowed(svc: Service) -> None:
    svc.create_workflow({"name": "wf"})
    tr = svc.add_trigger("wf", {"type": "once", "run_at": "2026-03-01T00:00:00Z"}, allow_past=True)
    assert tr.type == "once"


def test_trigger_name_rules(svc: Service, any_db: Database) -> None:
    svc.create_workflow({"name": "wf"})
    svc.add_trigger("wf", {"type": "interval", "every": 60}, name="tick")
    with pytest.raises(Conflict, match=r"already has a trigger named 'tick'"):
        svc.add_trigger("wf", {"type": "interval", "every": 60}, name="tick")
    with pytest.raises(InvalidInput, match=r"^name: "):
        svc.add_trigger("wf", {"type": "interval", "every": 60}, name="no spaces please")
    assert counts(any_db) == (1, 1, 0)


def test_history_filters(svc: Service, any_db: Database) -> None:
    wf = svc.create_workflow({"name": "wf"})
    tr = svc.add_trigger("wf", {"type": "interval", "every": 60})
    with any_db.session() as s:
        for i, status in enumerate(["succeeded", "failed", "skipped"]):
            s.add(Execution(workflow_id=wf.id, trigger_id=tr.id, status=status, attempt=1,
                            scheduled_for=NOW + timedelta(minutes=i), created_at=NOW + timedelta(minutes=i)))
    rows = svc.history(workflow="wf")
    assert [r.status for r in rows] == ["skipped", "failed", "succeeded"]  # newest first
    assert [r.status for r in svc.history(status="failed")] == ["failed"]
    assert len(svc.history(trigger=str(tr.id), limit=2)) == 2
    assert len(svc.history(since=NOW + timedelta(seconds=30))) == 2
    one = svc.get_execution(str(rows[0].id))
    assert one.workflow == "wf" and one.trigger_id == tr.id
    with pytest.raises(InvalidInput, match=r"^status: 'weird' is not one of"):
        svc.history(status="weird")


def test_apply_is_idempotent_and_atomic(svc: Service, any_db: Database) -> None:
    doc = {
        "name": "nightly",
        "steps": [LOG_STEP],
        "triggers": [
            {"name": "weekdays", "cron": "0 0 9 ? * MON-FRI", "tz": "Europe/Berlin"},
            {"name": "tick", "every": "5m"},
        ],
    }
    plan = svc.apply([doc])
    assert [(c["action"], c["kind"], c["name"]) for c in plan] == [
        ("create", "workflow", "nightly"),
        ("create", "trigger", "nightly/weekdays"),
        ("create", "trigger", "nightly/tick"),
    ]
    assert svc.apply([doc]) == []  # idempotent
    doc["triggers"][1]["every"] = "10m"
    dry = svc.apply([doc], dry_run=True)
    assert [(c["action"], c["name"]) for c in dry] == [("update", "nightly/tick")]
    assert svc.get_trigger("nightly/tick").spec["every"] == 300  # dry run changed nothing
    svc.apply([doc])
    assert svc.get_trigger("nightly/tick").spec["every"] == 600
    before = counts(any_db)
    bad = {"name": "other", "triggers": [{"every": "5m"}, {"cron": "not a cron"}]}
    with pytest.raises(InvalidCronExpression, match=r"^workflows\[1\]\.triggers\[1\]\."):
        svc.apply([{"name": "third"}, bad])
    assert counts(any_db) == before  # nothing half-written
