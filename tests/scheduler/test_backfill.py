"""woow trigger backfill: every nominal fire of a window without an execution row, oldest first,
published as the scheduled fire it would have been (its scheduled_for is the idempotency key)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from woow_scheduler.cli import cli
from woow_scheduler.db import Database, Execution, Trigger
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.settings import Settings

from .conftest import published

LOG_STEP = '{"name": "hello", "type": "log", "config": {"message": "hi"}}'


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("WOOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WOOW_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("WOOW_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("WOOW_BROKER_URL", settings.effective_broker_url)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, f"exit {result.exit_code}: {result.output}{result.stderr}"
        return result

    return invoke


def test_backfill_enqueues_the_missing_fires_once(
    run: Any, settings: Settings, db: Database, redis_client: redis.Redis
) -> None:
    run("workflow", "create", "report", "--step", LOG_STEP)
    run("trigger", "add", "report", "--name", "minutely", "--cron", "0 * * * * ?")
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    start = end - timedelta(minutes=49)  # 50 fires, both ends inclusive
    window = ["--from", start.isoformat(), "--to", end.isoformat()]
    planned = json.loads(run("trigger", "backfill", "report/minutely", *window, "--dry-run", "--json").stdout)
    expected = [start + timedelta(minutes=i) for i in range(50)]
    assert [datetime.fromisoformat(p["utc"]) for p in planned] == expected
    assert published(redis_client, settings) == []  # a dry run publishes nothing
    out = json.loads(run("trigger", "backfill", "report/minutely", *window, "--json").stdout)
    assert len(out["enqueued"]) == 50
    sent = published(redis_client, settings)
    assert [datetime.fromisoformat(m["scheduled_for"]) for m in sent] == expected  # oldest first
    assert all(m["backfill"] is True for m in sent)  # marked: the worker records it for history
    with db.session() as s:
        tr = s.query(Trigger).one()
        assert {m["trigger_id"] for m in sent} == {str(tr.id)}
        # what the worker records for those fires (one row per (trigger, scheduled_for))
        for when in expected:
            s.add(Execution(workflow_id=tr.workflow_id, trigger_id=tr.id, scheduled_for=when,
                            status=ExecutionStatus.SUCCEEDED))  # fmt: skip
    again = json.loads(run("trigger", "backfill", "report/minutely", *window, "--json").stdout)
    assert again["enqueued"] == []
    assert len(published(redis_client, settings)) == 50
    limited = run("trigger", "backfill", "report/minutely", "--from", (start - timedelta(minutes=9)).isoformat(),
                  "--to", end.isoformat(), "--dry-run", "--limit", "3", "--json").stdout  # fmt: skip
    assert len(json.loads(limited)) == 3


def test_backfill_errors(run: Any) -> None:
    run("workflow", "create", "report", "--step", LOG_STEP)
    run("trigger", "add", "report", "--name", "t", "--cron", "0 * * * * ?")
    bad = run(
        "trigger", "backfill", "report/t", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z", code=2
    )
    assert "to — 2026-01-01T00:00:00+00:00 is before from 2026-01-02T00:00:00+00:00" in bad.output
    bad = run("trigger", "backfill", "report/t", "--from", "yesterday", "--to", "now", code=2)
    assert "'yesterday' is not a date-time" in bad.output
