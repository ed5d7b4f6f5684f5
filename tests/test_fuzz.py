"""Property-based fuzzing of the CLI and the service layer (issue: bad input never half-writes).

Every rejection is a typed error with a one-line message; the row counts and the Redis entries
are the same before and after a rejected command; an accepted trigger always has its entry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from woow_scheduler.cli import cli
from woow_scheduler.cron import CronExpression
from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.errors import InvalidInput, WoowError
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.sync import RedBeatMirror
from woow_scheduler.service import Service
from woow_scheduler.settings import Settings

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

CRON_ATOMS = ["*", "?", "L", "W", "#", "/", "-", ",", "0", "1", "5", "7", "15", "31", "59", "60", "MON", "FRI",
              "JAN", "DEC", "LW", "L-3", "6#5", "3L", "15W", "*/5", "0/15", "10-50/7", "FRI-MON", "", "  ", "\t",
              "-1", "99999", "2099", "1969", "é", "%", ";"]
cron_text = st.lists(st.sampled_from(CRON_ATOMS), min_size=0, max_size=9).map(" ".join) | st.text(max_size=40)
timezones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
                             "Mars/Base", "", "utc", "Europe/Berlin ", "../../etc/passwd"])
durations = st.one_of(st.integers(-10, 10**7), st.sampled_from(["5m", "1h30m", "1d", "0s", "-5m", "5x", "", "1e9",
                                                                  "2w", "m5", "1h 30m", " 30 ", "nan"]))
dates = st.one_of(st.none(), st.sampled_from(["2030-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "2030-13-01T00:00:00",
                                              "2031-06-01 09:00", "not a date", "2030-03-29T02:30:00", "+1h",
                                              "now", "+5x", ""]))


def test_cron_parser_rejects_with_one_typed_line() -> None:
    @FUZZ
    @given(text=cron_text, tz=timezones)
    def check(text: str, tz: str) -> None:
        try:
            expr = CronExpression(text, timezone=tz)
        except InvalidInput as exc:
            assert "\n" not in str(exc) and str(exc)
            return
        nxt = expr.next_after(datetime(2026, 1, 1, tzinfo=UTC))
        assert nxt is None or nxt > datetime(2026, 1, 1, tzinfo=UTC)

    check()


def _state(db: Database, client: redis.Redis, keys: Keys) -> tuple[int, int, int, int]:
    with db.session() as s:
        rows = (s.scalar(select(func.count()).select_from(Workflow)) or 0,
                s.scalar(select(func.count()).select_from(Trigger)) or 0,
                s.scalar(select(func.count()).select_from(Execution)) or 0)
    return (*rows, int(client.zcard(keys.redbeat_schedule)))


trigger_specs = st.fixed_dictionaries(
    {"type": st.sampled_from(["cron", "interval", "once", "weekly", ""])},
    optional={
        "expression": cron_text,
        "every": durations,
        "run_at": dates,
        "timezone": timezones,
        "start_at": dates,
        "end_at": dates,
        "repeat_count": st.one_of(st.integers(-3, 5), st.text(max_size=3)),
        "misfire_policy": st.sampled_from(["fire_once_now", "skip", "fire_all", "sometimes"]),
        "misfire_threshold": st.one_of(st.floats(allow_nan=True), st.integers(-5, 100)),
        "max_catchup": st.integers(-2, 5),
        "dst_policy": st.sampled_from(["wall_clock", "quartz", "summer"]),
        "colour": st.just("red"),
    },
)


def test_service_add_trigger_never_half_writes(settings: Settings, db: Database, redis_client: redis.Redis) -> None:
    keys = Keys(settings.key_prefix)
    svc = Service(db, settings, mirror=RedBeatMirror(settings, db, redis_client), redis_client=redis_client)
    svc.create_workflow({"name": "fuzz"})

    @FUZZ
    @given(spec=trigger_specs, name=st.one_of(st.none(), st.text(max_size=12)))
    def check(spec: dict[str, Any], name: str | None) -> None:
        before = _state(db, redis_client, keys)
        try:
            view = svc.add_trigger("fuzz", spec, name=name)
        except WoowError as exc:
            assert isinstance(exc, InvalidInput), repr(exc)
            assert "\n" not in str(exc) and ":" in str(exc)
            assert _state(db, redis_client, keys) == before
            return
        after = _state(db, redis_client, keys)
        assert after[1] == before[1] + 1
        # an accepted, enabled trigger has its entry; a complete one has none
        entry = redis_client.exists(keys.redbeat_entry(view.id))
        assert bool(entry) == (view.state == "NORMAL")
        svc.delete_trigger(str(view.id))
        assert _state(db, redis_client, keys) == before

    check()


workflow_docs = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=10), st.sampled_from(["ok-name", "x y", "a" * 201]))},
    optional={
        "steps": st.one_of(
            st.text(max_size=5),
            st.lists(st.fixed_dictionaries(
                {"name": st.sampled_from(["a", "b", "", " a"]),
                 "type": st.sampled_from(["log", "sleep", "shell", "python", "http", "nope"])},
                optional={"config": st.dictionaries(st.sampled_from(["message", "seconds", "url", "argv", "level",
                                                                     "x"]),
                                                    st.one_of(st.text(max_size=5), st.integers(-5, 5)), max_size=3),
                          "timeout": st.one_of(st.integers(-1, 5), st.text(max_size=2))}), max_size=3)),
        "concurrency": st.sampled_from(["forbid", "queue", "allow", "never"]),
        "max_retries": st.integers(-2, 200),
        "timeout": st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-5, 5)),
        "triggers": st.lists(st.one_of(
            st.fixed_dictionaries({"cron": cron_text}, optional={"tz": timezones, "name": st.text(max_size=6)}),
            st.fixed_dictionaries({"every": durations}),
            st.fixed_dictionaries({"at": dates}),
            st.text(max_size=4)), max_size=3),
    },
)


def test_apply_is_atomic_for_any_file(settings: Settings, db: Database, redis_client: redis.Redis) -> None:
    keys = Keys(settings.key_prefix)
    svc = Service(db, settings, mirror=RedBeatMirror(settings, db, redis_client), redis_client=redis_client)

    @FUZZ
    @given(docs=st.lists(workflow_docs, min_size=1, max_size=2))
    def check(docs: list[dict[str, Any]]) -> None:
        before = _state(db, redis_client, keys)
        try:
            svc.apply(docs)
        except WoowError as exc:
            assert isinstance(exc, InvalidInput), repr(exc)
            assert "\n" not in str(exc)
            assert _state(db, redis_client, keys) == before
            return
        for doc in docs:  # clean up what was created
            svc.delete_workflow(doc["name"])

    check()


def test_cli_trigger_add_exit_codes(settings: Settings, db: Database, redis_client: redis.Redis,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    keys = Keys(settings.key_prefix)
    for key, value in (("WOOW_DATABASE_URL", settings.database_url), ("WOOW_REDIS_URL", settings.redis_url),
                       ("WOOW_KEY_PREFIX", settings.key_prefix)):
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    assert runner.invoke(cli, ["workflow", "create", "fz"]).exit_code == 0

    options = st.lists(st.one_of(
        st.tuples(st.just("--cron"), cron_text), st.tuples(st.just("--every"), durations.map(str)),
        st.tuples(st.just("--at"), dates.map(str)), st.tuples(st.just("--tz"), timezones),
        st.tuples(st.just("--start"), dates.map(str)), st.tuples(st.just("--end"), dates.map(str)),
        st.tuples(st.just("--repeat"), st.sampled_from(["1", "-1", "x"])),
        st.tuples(st.just("--misfire"), st.sampled_from(["skip", "later"]))), max_size=4)

    @FUZZ
    @given(opts=options, workflow=st.sampled_from(["fz", "ghost", ""]))
    def check(opts: list[tuple[str, str]], workflow: str) -> None:
        before = _state(db, redis_client, keys)
        args = ["trigger", "add", workflow, "--json", *[x for pair in opts for x in pair]]
        result = runner.invoke(cli, args)
        assert result.exit_code in (0, 2), (args, result.output, result.exception)
        if result.exit_code == 2:
            assert _state(db, redis_client, keys) == before
            assert len(result.stderr.strip().splitlines()) >= 1
            if result.stderr.startswith("error: "):
                assert len(result.stderr.strip().splitlines()) == 1
            return
        tid = json.loads(result.stdout)["id"]
        assert runner.invoke(cli, ["trigger", "delete", tid]).exit_code == 0

    check()
