"""A completed one-time trigger given a future ``at`` again is NORMAL and fires again, whether the
new time comes through ``woow workflow apply`` or through the API's ``PUT /triggers/{id}``.

Both go through the one writer of trigger state (``woow_scheduler.db.trigger_state``); before it,
``apply`` left the trigger COMPLETE with a next fire time that never came.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from woow_scheduler.api import create_api
from woow_scheduler.cli import cli
from woow_scheduler.db import Database, Trigger
from woow_scheduler.enums import TriggerState
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.bookkeeping import drain_fired
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import create_token

from .conftest import published

STEPS = [{"name": "hello", "type": "log", "config": {"message": "hi"}}]


def soon(seconds: int = 2) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def the_trigger(db: Database) -> Trigger:
    with db.session() as s:
        tr = s.scalars(select(Trigger)).one()
        s.expunge(tr)
        return tr


def fire_when_due(
    sch: WoowScheduler, settings: Settings, db: Database, client: redis.Redis, at: datetime
) -> list[dict[str, Any]]:
    """Tick until the fire at ``at`` is published, then drain the bookkeeping; the fires for ``at``."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        sch.tick()
        fires = [f for f in published(client, settings) if datetime.fromisoformat(f["scheduled_for"]) == at]
        if fires:
            drain_fired(settings, db, client)
            return fires
        time.sleep(0.2)
    raise AssertionError(f"no fire for {at.isoformat()} within 15 s")


def assert_complete_and_unscheduled(db: Database, client: redis.Redis, settings: Settings, fires: int) -> None:
    tr = the_trigger(db)
    assert (tr.state, tr.next_fire_time, tr.fire_count) == (TriggerState.COMPLETE, None, fires)
    keys = Keys(settings.key_prefix)
    assert client.zscore(keys.redbeat_schedule, keys.redbeat_entry(tr.id)) is None


def assert_revived(db: Database, client: redis.Redis, settings: Settings, at: datetime) -> None:
    tr = the_trigger(db)
    assert (tr.state, tr.next_fire_time, tr.fire_count) == (TriggerState.NORMAL, at, 1)
    keys = Keys(settings.key_prefix)
    assert client.zscore(keys.redbeat_schedule, keys.redbeat_entry(tr.id)) is not None


def test_workflow_apply_revives_a_completed_one_time_trigger(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_scheduler: Callable[..., WoowScheduler],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WOOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WOOW_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("WOOW_KEY_PREFIX", settings.key_prefix)
    runner = CliRunner()
    doc = tmp_path / "launch.json"

    def apply(at: datetime) -> list[dict[str, Any]]:
        trigger = {"name": "go", "at": at.isoformat()}
        doc.write_text(json.dumps({"name": "launch", "steps": STEPS, "triggers": [trigger]}))
        result = runner.invoke(cli, ["workflow", "apply", "-f", str(doc), "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        changes: list[dict[str, Any]] = json.loads(result.stdout)["changes"]
        return changes

    sch = make_scheduler()
    first = soon()
    apply(first)
    assert len(fire_when_due(sch, settings, db, redis_client, first)) == 1
    assert_complete_and_unscheduled(db, redis_client, settings, fires=1)

    second = soon()
    changes = apply(second)
    assert [(c["action"], c["name"], c["fields"]) for c in changes] == [("update", "launch/go", ["run_at"])]
    assert_revived(db, redis_client, settings, second)
    assert len(fire_when_due(sch, settings, db, redis_client, second)) == 1
    assert_complete_and_unscheduled(db, redis_client, settings, fires=2)


def test_api_put_revives_a_completed_one_time_trigger(
    settings: Settings, db: Database, redis_client: redis.Redis, make_scheduler: Callable[..., WoowScheduler]
) -> None:
    token = create_token(db, user_id="alice")[1]
    sch = make_scheduler()
    with TestClient(create_api(settings), headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.post("/workflows", json={"name": "launch", "steps": STEPS}).status_code == 201
        first = soon()
        made = api.post("/workflows/launch/schedule", json={"name": "go", "at": first.isoformat()})
        assert made.status_code == 201, made.text
        tid = made.json()["id"]
        assert len(fire_when_due(sch, settings, db, redis_client, first)) == 1
        assert_complete_and_unscheduled(db, redis_client, settings, fires=1)

        second = soon()
        put = api.put(f"/triggers/{tid}", json={"at": second.isoformat()})
        assert put.status_code == 200, put.text
        assert (put.json()["state"], put.json()["next_fire_time"]) == ("NORMAL", second.isoformat())
        assert_revived(db, redis_client, settings, second)
        assert len(fire_when_due(sch, settings, db, redis_client, second)) == 1
        assert_complete_and_unscheduled(db, redis_client, settings, fires=2)

        renamed = api.put(f"/triggers/{tid}", json={"name": "other", "at": soon(60).isoformat()})
        assert renamed.status_code == 422 and renamed.json()["field"] == "name"
        past = api.put(f"/triggers/{tid}", json={"at": "2020-01-01T00:00:00+00:00"})
        assert past.status_code == 422 and past.json()["field"] == "run_at"
    assert_complete_and_unscheduled(db, redis_client, settings, fires=2)  # nothing half-written
