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
