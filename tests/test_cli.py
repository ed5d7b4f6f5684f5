"""The CLI through click's runner, against a real PostgreSQL database and Redis prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from woow_scheduler.cli import cli
from woow_scheduler.db import Database, Trigger, Workflow
from woow_scheduler.settings import Settings

LOG_STEP = '{"name": "hello", "type": "log", "config": {"message": "hi"}}'


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("WOOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WOOW_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("WOOW_KEY_PREFIX", settings.key_prefix)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, f"exit {result.exit_code}: {result.output}{result.stderr}"
        return result

    return invoke


def row_counts(db: Database) -> tuple[int, int]:
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(Workflow)) or 0,
                s.scalar(select(func.count()).select_from(Trigger)) or 0)


def test_help_lists_the_command_groups(run: Any) -> None:
    out = run("--help").output
    for group in ("db", "workflow", "trigger", "cron", "history", "execution", "strategies", "beat", "worker",
                  "flower", "dev"):
        assert f"  {group}" in out


def test_workflow_and_trigger_lifecycle(run: Any, db: Database) -> None:
    created = json.loads(run("workflow", "create", "report", "--step", LOG_STEP, "--json").stdout)
    assert set(created) >= {"id", "name", "description", "steps", "concurrency", "max_retries", "retry_delay",
                            "timeout"}
    assert created["name"] == "report" and created["steps"][0]["type"] == "log"

    cron = json.loads(run("trigger", "add", "report", "--cron", "0 0 9 ? * MON-FRI", "--tz", "Europe/Berlin",
                          "--name", "weekdays", "--user", "alice", "--json").stdout)
    assert set(cron) >= {"id", "workflow_id", "workflow", "name", "type", "spec", "timezone", "dst_policy", "state",
                         "misfire_policy", "start_at", "end_at", "repeat_count", "fire_count", "previous_fire_time",
                         "next_fire_time"}
    assert cron["timezone"] == "Europe/Berlin" and cron["state"] == "NORMAL"
    assert cron["next_fire_time"].endswith("+00:00")
    run("trigger", "add", "report", "--every", "5m", "--name", "tick")
    run("trigger", "add", "report", "--at", "+1h", "--name", "soon")

    listed = json.loads(run("trigger", "list", "--json").stdout)
    assert sorted(t["name"] for t in listed) == ["soon", "tick", "weekdays"]
    assert "weekdays" in run("trigger", "list").output

    paused = json.loads(run("trigger", "pause", "report/tick", "--json").stdout)
    assert paused["state"] == "PAUSED"
    assert [t["name"] for t in json.loads(run("trigger", "list", "--state", "PAUSED", "--json").stdout)] == ["tick"]
    assert json.loads(run("trigger", "resume", paused["id"], "--json").stdout)["state"] == "NORMAL"

    nxt = json.loads(run("trigger", "next", cron["id"], "-n", "3", "--json").stdout)
    assert len(nxt) == 3 and all(t["local"].endswith(("+01:00", "+02:00")) for t in nxt)
    assert all(t["local"][11:19] == "09:00:00" for t in nxt)

    shown = json.loads(run("workflow", "show", "report", "--json").stdout)
    assert len(shown["triggers"]) == 3
    assert json.loads(run("workflow", "list", "--json").stdout)[0]["name"] == "report"
    run("trigger", "delete", "report/soon")
    assert row_counts(db) == (1, 2)
    run("workflow", "delete", "report", "--yes")
    assert row_counts(db) == (0, 0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("trigger", "add", "ghost", "--every", "5m"), "error: workflow — 'ghost' not found"),
        (("trigger", "add", "wf", "--cron", "0 0 9 ? * MON-FRX"), "day-of-week"),
        (("trigger", "add", "wf", "--cron", "0 0 9 * * ?", "--tz", "Mars/Base"), "Mars/Base"),
        (("trigger", "add", "wf", "--every", "0s"), "every"),
        (("trigger", "add", "wf", "--every", "-5m"), "every"),
        (("trigger", "add", "wf", "--at", "2020-01-01T00:00:00Z"), "run_at"),
        (("trigger", "add", "wf", "--every", "5m", "--start", "2031-01-02T00:00:00Z", "--end",
          "2031-01-01T00:00:00Z"), "end_at"),
        (("trigger", "add", "wf", "--every", "5m", "--cron", "* * * * * ?"), "exactly one of"),
        (("workflow", "create", "w2", "--step", "{not json"), "steps[0]"),
        (("workflow", "create", "w2", "--step", '{"name": "a", "type": "teleport"}'), "unknown strategy 'teleport'"),
        (("workflow", "create", "w2", "--step", '{"name": "a", "type": "sleep", "config": {"seconds": -1}}'),
         "steps[0].config.seconds"),
        (("history", "--status", "weird"), "status"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run: Any, db: Database, args: tuple[str, ...],
                                                         needle: str) -> None:
    run("workflow", "create", "wf")
    before = row_counts(db)
    result = run(*args, code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]
    assert row_counts(db) == before


def test_unreachable_database_is_a_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOOW_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    result = CliRunner().invoke(cli, ["workflow", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database")


def test_bad_setting_is_reported_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOOW_LOCK_TTL", "soon")
    result = CliRunner().invoke(cli, ["workflow", "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: setting WOOW_LOCK_TTL")


def test_cron_next_needs_no_store() -> None:
    result = CliRunner().invoke(cli, ["cron", "next", "0 0 9 ? * MON-FRI", "--tz", "Europe/Berlin",
                                      "--after", "2026-03-27T00:00:00", "-n", "3", "--json"])
    assert result.exit_code == 0, result.output
    times = json.loads(result.stdout)
    assert [t["local"] for t in times] == ["2026-03-27T09:00:00+01:00", "2026-03-30T09:00:00+02:00",
                                           "2026-03-31T09:00:00+02:00"]
    assert times[1]["utc"] == "2026-03-30T07:00:00+00:00"
    bad = CliRunner().invoke(cli, ["cron", "next", "0 0 9 ? * 8"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "day-of-week" in bad.stderr


def test_apply_file(run: Any, tmp_path: Path) -> None:
    f = tmp_path / "wf.yaml"
    f.write_text(
        "name: nightly\nsteps:\n  - {name: hello, type: log, config: {message: hi}}\n"
        "triggers:\n  - {name: weekdays, cron: '0 0 9 ? * MON-FRI', tz: Europe/Berlin}\n  - {name: tick, every: 5m}\n"
    )
    first = json.loads(run("workflow", "apply", "-f", str(f), "--json").stdout)
    assert len(first["changes"]) == 3
    assert run("workflow", "apply", "-f", str(f)).output.strip() == "no changes"
    f.write_text(f.read_text().replace("5m", "10m"))
    assert "would update trigger nightly/tick" in run("workflow", "apply", "-f", str(f), "--dry-run").output


def test_strategies_lists_builtins(run: Any) -> None:
    names = {s["name"] for s in json.loads(run("strategies", "--json").stdout)}
    assert {"log", "sleep"} <= names


def test_every_option_reads_a_woow_environment_variable(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run("workflow", "create", "envwf")
    monkeypatch.setenv("WOOW_TRIGGER_ADD_TZ", "Asia/Tokyo")
    monkeypatch.setenv("WOOW_TRIGGER_ADD_NAME", "from-env")
    view = json.loads(run("trigger", "add", "envwf", "--cron", "0 0 9 * * ?", "--json").stdout)
    assert view["timezone"] == "Asia/Tokyo" and view["name"] == "from-env"
    monkeypatch.setenv("WOOW_CRON_NEXT_COUNT", "2")
    assert len(json.loads(run("cron", "next", "0 0 9 * * ?", "--json").stdout)) == 2


def test_trigger_add_echoes_what_it_stored_in_plain_words(run: Any) -> None:
    """Unix-looking cron is stored as what it means ('0 0 9 * *' = 00:00 on day 9): say so for every type."""
    run("workflow", "create", "plain", "--step", LOG_STEP)
    unix = run("trigger", "add", "plain", "--cron", "0 0 9 * *").output.splitlines()
    assert unix[1].strip() == "cron '0 0 9 * * (unix)' (UTC): at 00:00:00, on day 9 of the month (Unix cron)"
    quartz = run("trigger", "add", "plain", "--cron", "0 0 9 ? * MON-FRI", "--tz", "Europe/Berlin").output
    assert "(Europe/Berlin): at 09:00:00, Monday through Friday" in quartz
    every = run("trigger", "add", "plain", "--every", "5m", "--start", "2030-01-01T00:00:00+00:00").output
    assert every.splitlines()[1].strip() == "every 5m from 2030-01-01T00:00:00Z"
    once = run("trigger", "add", "plain", "--at", "2030-01-02T03:04:05+00:00").output
    assert once.splitlines()[1].strip() == "once at 2030-01-02T03:04:05Z"


def test_flower_options_in_both_forms_reach_tornado_as_name_equals_value() -> None:
    from woow_scheduler.cli.procs import flower_argv

    assert flower_argv(("--port", "5555", "--address=127.0.0.1", "--debug", "--basic-auth", "a:b")) == [
        "--port=5555", "--address=127.0.0.1", "--debug", "--basic-auth=a:b"]


def test_status_table_says_what_the_problems_say(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No beat, no worker: the table's beat and workers rows are FAIL with the problem's words."""
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    out = run("status", code=1).output
    rows = {cells[0]: cells[1:] for line in out.splitlines()
            if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 4}
    assert rows["beat"][:2] == ["FAIL", "no active beat holds the lock (start 'woow beat')"], out
    assert rows["workers"][:2] == ["FAIL", "no worker answered ping (start 'woow worker')"], out
    assert rows["database"][0] == rows["redis"][0] == rows["broker"][0] == "ok", out
    assert "problem: beat: no active beat holds the lock (start 'woow beat')" in out
    assert "status: degraded" in out
    report = json.loads(run("status", "--json", code=1).stdout)
    assert not report["checks"]["beat"]["ok"] and report["checks"]["beat"]["info"]["lock_held"] is False
