"""Named calendars end to end in-process: the service stores and re-plans, sync carries the
calendar into the RedBeat entry, and beat skips the times it excludes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from woow_scheduler.db import Database, Trigger
from woow_scheduler.errors import Conflict, InvalidCalendar, InvalidInput
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.codec import loads
from woow_scheduler.scheduler.schedule import WoowTriggerSchedule
from woow_scheduler.scheduler.sync import Reconciler, RedBeatMirror
from woow_scheduler.service import Service
from woow_scheduler.settings import Settings

from .conftest import published

LOG_STEP = {"name": "hello", "type": "log", "config": {"message": "hi"}}


@pytest.fixture
def svc(settings: Settings, db: Database, redis_client: redis.Redis) -> Service:
    mirror = RedBeatMirror(settings, db, redis_client)
    service = Service(db, settings, mirror=mirror, redis_client=redis_client)
    service.create_workflow({"name": "report", "steps": [LOG_STEP]})
    return service


def _entry_schedule(client: redis.Redis, settings: Settings, trigger_id: Any) -> WoowTriggerSchedule:
    raw = client.hget(Keys(settings.key_prefix).redbeat_entry(trigger_id), "definition")
    assert raw is not None
    sched = loads(raw)["schedule"]
    assert isinstance(sched, WoowTriggerSchedule)
    return sched


def test_holiday_today_moves_the_next_fire_to_tomorrow_and_beat_skips_today(
    svc: Service,
    settings: Settings,
    redis_client: redis.Redis,
    make_scheduler: Callable[..., WoowScheduler],
) -> None:
    zone = ZoneInfo("Europe/Berlin")
    today = datetime.now(zone).date()
    svc.add_calendar("today-off", {"type": "holiday", "dates": [today.isoformat()], "timezone": "Europe/Berlin"})
    view = svc.add_trigger(
        "report", {"type": "cron", "expression": "* * * * * ?", "timezone": "Europe/Berlin"}, calendar="today-off"
    )
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    assert view.next_fire_time == tomorrow
    assert svc.next_fire_times(str(view.id), 2) == [tomorrow, tomorrow + timedelta(seconds=1)]
    sched = _entry_schedule(redis_client, settings, view.id)  # write-through carried the calendar
    assert sched.calendar is not None and sched.calendar.type == "holiday"
    time.sleep(1.2)
    make_scheduler().tick()
    assert published(redis_client, settings) == []  # an every-second trigger, and nothing today
    score = redis_client.zscore(
        Keys(settings.key_prefix).redbeat_schedule, Keys(settings.key_prefix).redbeat_entry(view.id)
    )
    assert score == tomorrow.timestamp()


def test_editing_a_calendar_replans_its_triggers_and_deleting_one_in_use_is_refused(
    svc: Service, settings: Settings, db: Database, redis_client: redis.Redis, reconciler: Reconciler
) -> None:
    svc.add_calendar("weekends", {"type": "weekly"})
    a = svc.add_trigger("report", {"type": "cron", "expression": "0 0 12 * * ?"}, name="noon", calendar="weekends")
    svc.add_trigger("report", {"type": "interval", "every": "1d"}, name="daily", calendar="weekends")
    with pytest.raises(Conflict, match=r"^calendar: 'weekends' is used by 2 trigger\(s\): report/daily, report/noon"):
        svc.delete_calendar("weekends")
    assert [c.name for c in svc.list_calendars()] == ["weekends"]
    with db.session() as s:
        before = s.get(Trigger, a.id)
        assert before is not None
        version = before.version
    everything = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
    view = svc.update_calendar("weekends", {"type": "weekly", "exclude": everything})
    assert view.triggers == ("report/daily", "report/noon")
    with db.session() as s:
        after = s.get(Trigger, a.id)
        assert after is not None
        assert after.version == version + 1 and after.next_fire_time is None and after.state.value == "COMPLETE"
    assert redis_client.hget(Keys(settings.key_prefix).redbeat_entry(a.id), "definition") is None  # nothing to fire
    svc.update_calendar("weekends", {"type": "weekly", "exclude": ["SAT", "SUN"]})
    sched = _entry_schedule(redis_client, settings, a.id)
    assert sched.calendar is not None and sched.calendar.exclude == ("SAT", "SUN")  # type: ignore[union-attr]
    nxt = svc.get_trigger(str(a.id)).next_fire_time
    assert nxt is not None and nxt.weekday() < 5
    report = reconciler.full()
    assert report.errors == 0 and report.added == 0  # the write-through entries already match sync's


def test_calendar_input_errors(svc: Service) -> None:
    with pytest.raises(InvalidCalendar, match=r"^dates: 'soon' is not a date"):
        svc.add_calendar("bad", {"type": "holiday", "dates": ["soon"]})
    with pytest.raises(InvalidInput, match=r"^calendar: 'nope' not found"):
        svc.add_trigger("report", {"type": "cron", "expression": "0 0 12 * * ?"}, calendar="nope")
    with pytest.raises(InvalidInput, match=r"^name: "):
        svc.add_calendar("no spaces", {"type": "weekly"})
    svc.add_calendar("dup", {"type": "weekly"})
    with pytest.raises(Conflict, match=r"^name: a calendar named 'dup' already exists"):
        svc.add_calendar("dup", {"type": "weekly"})
    assert svc.delete_calendar("dup").name == "dup"


def test_workflow_files_name_calendars_labels_and_the_quartz_types(svc: Service) -> None:
    svc.add_calendar("weekends", {"type": "weekly"})
    svc.add_calendar("holidays", {"type": "holiday", "dates": ["2030-12-25"]})
    doc = {
        "name": "books",
        "labels": {"team": "finance"},
        "steps": [LOG_STEP],
        "triggers": [
            {"name": "office", "type": "daily_time_interval", "every": "15m", "start_time_of_day": "09:00",
             "end_time_of_day": "17:00", "days_of_week": ["MON-FRI"], "calendar": "holidays",
             "labels": {"team": "finance"}},
            {"name": "monthly", "type": "calendar_interval", "every": 1, "unit": "month",
             "start_at": "2030-01-31T02:00:00", "calendar": "weekends"},
        ],
    }  # fmt: skip
    plan = svc.apply([doc])
    assert [(p["action"], p["name"]) for p in plan] == [
        ("create", "books"),
        ("create", "books/office"),
        ("create", "books/monthly"),
    ]
    assert svc.apply([doc]) == []  # the same file again changes nothing (daily start_at kept)
    assert svc.get_calendar("holidays").triggers == ("books/office",)
    assert [w.name for w in svc.list_workflows(labels={"team": "finance"})] == ["books"]
    doc["triggers"][0]["calendar"] = "weekends"  # type: ignore[index]
    plan = svc.apply([doc])
    assert plan == [{"action": "update", "kind": "trigger", "name": "books/office", "fields": ["calendar"]}]
    assert svc.get_calendar("weekends").triggers == ("books/monthly", "books/office")
    doc["triggers"][1]["calendar"] = "nope"  # type: ignore[index]
    with pytest.raises(InvalidInput, match=r"^workflows\[0\]\.triggers\[1\]\.calendar: 'nope' not found"):
        svc.apply([doc])


def test_workflow_files_define_calendars(svc: Service, db: Database, tmp_path: Any) -> None:
    import json

    from woow_scheduler.service.apply import load_file

    text = """
calendars:
  closed: {type: weekly, exclude: [SAT, SUN]}
  xmas: {type: annual, days: ["12-25"]}
workflows:
  - name: books
    steps: [{name: hello, type: log, config: {message: hi}}]
    triggers:
      - {name: daily, cron: "0 0 9 * * ?", calendar: closed}
"""
    path = tmp_path / "books.yaml"
    path.write_text(text)
    calendars, docs = load_file(path)
    assert sorted(calendars) == ["closed", "xmas"] and [d["name"] for d in docs] == ["books"]
    dry = svc.apply(docs, calendars=calendars, dry_run=True)
    assert [(c["action"], c["kind"], c["name"]) for c in dry] == [
        ("create", "calendar", "closed"),
        ("create", "calendar", "xmas"),
        ("create", "workflow", "books"),
        ("create", "trigger", "books/daily"),
    ]
    assert svc.list_calendars() == []  # a dry run writes nothing
    assert svc.apply(docs, calendars=calendars) == dry
    assert svc.get_calendar("closed").triggers == ("books/daily",)
    assert svc.apply(docs, calendars=calendars) == []  # the same file again changes nothing
    before = svc.get_trigger("books/daily")
    nxt = datetime.fromisoformat(str(before.next_fire_time))
    assert nxt.weekday() < 5
    # a changed calendar re-plans the triggers using it, in the same transaction
    calendars["closed"] = {"type": "weekly", "exclude": ["MON", "TUE", "WED", "THU", "FRI", "SAT"]}
    plan = svc.apply(docs, calendars=calendars)
    assert plan == [{"action": "update", "kind": "calendar", "name": "closed", "fields": ["definition"]}]
    after = svc.get_trigger("books/daily")
    assert after.version > before.version
    assert datetime.fromisoformat(str(after.next_fire_time)).weekday() == 6  # Sundays only now
    # bad input: one line naming the field, nothing written (not even the valid calendar before it)
    cases = [
        ({"fresh": {"type": "weekly"}, "bad": {"type": "holiday", "dates": ["2026-13-01"]}},
         r"^calendars\.bad\.dates: '2026-13-01' is not a date"),
        ({"fresh": {"type": "weekly"}, "bad": "weekends"}, r"^calendars\.bad: must be a mapping with a 'type'"),
        ({"fresh": {"type": "weekly"}, "not a name!": {"type": "weekly"}}, r"^calendars: 'not a name!' is not a valid"),
    ]  # fmt: skip
    for bad, message in cases:
        with pytest.raises(InvalidInput, match=message):
            svc.apply(docs, calendars=bad)
    assert [c.name for c in svc.list_calendars()] == ["closed", "xmas"]
    # a file's trigger may name a calendar the same file defines (JSON, one workflow at the top)
    single = {"name": "other", "steps": [LOG_STEP], "calendars": {"fresh": {"type": "monthly", "exclude": [1]}},
              "triggers": [{"name": "t", "every": "1h", "calendar": "fresh"}]}  # fmt: skip
    (tmp_path / "other.json").write_text(json.dumps(single))
    calendars, docs = load_file(tmp_path / "other.json")
    svc.apply(docs, calendars=calendars)
    assert svc.get_calendar("fresh").triggers == ("other/t",)
    for shape, message in [
        ({"calendars": ["x"]}, r"^calendars: must be a mapping of name to definition"),
        ({"workflows": [], "calendar": {}}, r"^calendar: not a known top-level key"),
    ]:
        (tmp_path / "bad.json").write_text(json.dumps(shape))
        with pytest.raises(InvalidInput, match=message):
            load_file(tmp_path / "bad.json")


def test_trigger_views_name_their_calendar(
    svc: Service, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from woow_scheduler.cli import cli

    svc.add_calendar("weekends", {"type": "weekly"})
    svc.add_trigger("report", {"type": "cron", "expression": "0 0 9 * * ?"}, name="with", calendar="weekends")
    svc.add_trigger("report", {"type": "cron", "expression": "0 0 9 * * ?"}, name="without")
    assert {v.name: v.calendar for v in svc.list_triggers()} == {"with": "weekends", "without": None}
    assert svc.get_trigger("report/with").calendar == "weekends"
    assert svc.pause_trigger("report/with").calendar == "weekends"
    for name, value in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url),
                        ("KEY_PREFIX", settings.key_prefix)):  # fmt: skip
        monkeypatch.setenv(f"WOOW_{name}", value)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    shown = runner.invoke(cli, ["trigger", "show", "report/with"], catch_exceptions=False).stdout
    assert any(line.split() == ["calendar", "weekends"] for line in shown.splitlines()), shown
    listed = json.loads(runner.invoke(cli, ["trigger", "list", "--json"], catch_exceptions=False).stdout)
    assert {t["name"]: t["calendar"] for t in listed} == {"with": "weekends", "without": None}
    table = runner.invoke(cli, ["trigger", "list"], catch_exceptions=False).stdout
    assert "calendar" in table.splitlines()[1] and "weekends" in table, table
