"""Real beat and worker processes: the Quartz trigger types, a calendar and jitter as they fire."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select

from tests.support.procs import CeleryProcess, celery_beat, celery_worker, child_env, wait_for
from tests.support.zones import tzpath_env, use_tzpath, write_fixed_zone
from woow_scheduler.calendars import calendar_json, parse_calendar
from woow_scheduler.cli import cli
from woow_scheduler.db import CalendarRow, Database, Execution, Trigger, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.sync import RedBeatMirror
from woow_scheduler.service import Service
from woow_scheduler.settings import Settings, load_settings
from woow_scheduler.triggers import jitter_offset


@pytest.fixture
def esettings(pg_url: str, redis_url: str, key_prefix: str) -> Settings:
    return load_settings(
        database_url=pg_url,
        redis_url=redis_url,
        key_prefix=key_prefix,
        queue=f"woow-{uuid.uuid4().hex[:6]}",
        beat_lock_timeout=4.0,
        bookkeeping_interval=0.5,
        reconcile_interval=2.0,
        heartbeat_interval=1.0,
    )


@pytest.fixture
def wf(db: Database) -> Workflow:
    with db.session() as s:
        w = Workflow(
            name=f"q-{uuid.uuid4().hex[:6]}", steps=[{"name": "hi", "type": "log", "config": {"message": "hi"}}]
        )
        s.add(w)
    return w


@pytest.fixture
def worker(esettings: Settings, tmp_path: Path) -> Iterator[CeleryProcess]:
    with celery_worker(esettings, log_dir=tmp_path / "logs") as w:
        yield w


def _add(db: Database, wf: Workflow, spec: dict[str, Any], calendar_id: uuid.UUID | None = None) -> Trigger:
    with db.session() as s:
        t = Trigger(workflow_id=wf.id, name=f"t-{uuid.uuid4().hex[:6]}", type=spec["type"], spec=spec,
                    calendar_id=calendar_id)  # fmt: skip
        s.add(t)
    return t


def _runs(db: Database, trigger_id: uuid.UUID) -> list[tuple[datetime, datetime | None]]:
    with db.session() as s:
        rows = s.execute(
            select(Execution.scheduled_for, Execution.started_at).where(Execution.trigger_id == trigger_id)
        ).all()
    return sorted((r[0], r[1]) for r in rows if r[0] is not None)


def test_new_types_calendar_and_jitter_fire_for_real(
    esettings: Settings, db: Database, wf: Workflow, worker: CeleryProcess, tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    daily = _add(db, wf, {"type": "daily_time_interval", "every": 3, "start_at": start.isoformat()})
    cal = parse_calendar({"type": "cron", "expression": "1/2 * * * * ?"})  # excludes odd seconds
    with db.session() as s:
        row = CalendarRow(name="odd-seconds", definition=calendar_json(cal))
        s.add(row)
        s.flush()
        cal_id = row.id
    even = _add(db, wf, {"type": "cron", "expression": "* * * * * ?"}, calendar_id=cal_id)
    jittered = _add(db, wf, {"type": "interval", "every": 2, "start_at": start.isoformat(), "jitter": 2})
    with celery_beat(esettings, "-S", "woow_scheduler.beat:WoowScheduler", log_dir=tmp_path / "logs") as beat:
        wait_for(lambda: len(_runs(db, daily.id)) >= 3 and len(_runs(db, even.id)) >= 4, 30, "fires")
        wait_for(lambda: sum(1 for _, st in _runs(db, jittered.id) if st) >= 3, 30, "jittered fires")
        log = beat.log()
    got = [f for f, _ in _runs(db, daily.id)]
    assert all(b - a == timedelta(seconds=3) for a, b in itertools.pairwise(got)), got
    # counted from the start time of day (00:00:00 UTC), not from start_at, as Quartz does
    assert all((f.hour * 3600 + f.minute * 60 + f.second) % 3 == 0 for f in got), got
    got = [f for f, _ in _runs(db, even.id)]
    assert got and all(f.second % 2 == 0 for f in got), got  # the calendar, applied by beat
    for nominal, started in _runs(db, jittered.id):
        if started is not None:
            assert nominal.microsecond == 0
            assert started >= nominal + jitter_offset(str(jittered.id), nominal, 2) - timedelta(milliseconds=50)
    with db.session() as s:
        marks = s.execute(select(Execution.trigger_id, Execution.scheduled_for, Execution.jitter_ms, Execution.backfill)
                          .where(Execution.trigger_id.in_([jittered.id, even.id]))).all()  # fmt: skip
    # history shows the offset beat gave each jittered fire (and none for the others)
    want = {f: jitter_offset(str(jittered.id), f, 2) // timedelta(milliseconds=1) for f, _ in _runs(db, jittered.id)}
    assert {f: ms for t, f, ms, _ in marks if t == jittered.id} == want
    assert all(ms is None and not backfill for t, _, ms, backfill in marks if t == even.id)
    assert "Traceback" not in log, log


# -- issue 17's process-level checks: a holiday today, a backfill, a label paused ----------------
SCHEDULER = "woow_scheduler.beat:WoowScheduler"
EVERY_SECOND = "* * * * * ?"


def _service(esettings: Settings, db: Database, client: redis.Redis) -> Service:
    return Service(db, esettings, mirror=RedBeatMirror(esettings, db, client), redis_client=client)


def _cli(esettings: Settings, *args: str) -> Any:
    env = {k: v for k, v in child_env(esettings).items() if k.startswith("WOOW_")}
    result = CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _rows(db: Database, trigger_id: uuid.UUID) -> list[Execution]:
    with db.session() as s:
        return list(s.scalars(select(Execution).where(Execution.trigger_id == trigger_id)))


def test_a_holiday_today_skips_today_and_fires_from_the_next_day(
    esettings: Settings, db: Database, wf: Workflow, worker: CeleryProcess, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """'Today' is made to end a few seconds from now: the trigger's zone is one of our own whose
    offset puts local midnight there.  An every-second trigger whose holiday calendar holds today
    fires from midnight on; the same trigger without the calendar fires before it too."""
    zones = tmp_path / "zones"
    name = f"Test/Midnight{uuid.uuid4().hex[:6]}"
    svc = _service(esettings, db, redis_client)
    with celery_beat(esettings, "-S", SCHEDULER, log_dir=tmp_path / "logs", env=tzpath_env(zones)) as beat, \
            use_tzpath(zones):  # fmt: skip
        midnight = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
        write_fixed_zone(zones, name, -(midnight - midnight.replace(hour=0, minute=0, second=0)).seconds % 86400)
        zone = ZoneInfo(name)
        assert midnight.astimezone(zone).time() == time(0)
        today = (midnight - timedelta(seconds=1)).astimezone(zone).date()
        svc.add_calendar("today-off", {"type": "holiday", "dates": [today.isoformat()], "timezone": name})
        spec = {"type": "cron", "expression": EVERY_SECOND, "timezone": name}
        off = svc.add_trigger(wf.name, spec, name="holiday", calendar="today-off")
        control = svc.add_trigger(wf.name, spec, name="control")
        assert datetime.now(UTC) < midnight, "the machine was too slow to set the test up before midnight"
        assert off.next_fire_time == midnight  # planned past today at once
        wait_for(lambda: len(_rows(db, off.id)) >= 2, 25, "fires after midnight")
        log = beat.log()
    fired = sorted(r.scheduled_for for r in _rows(db, off.id) if r.scheduled_for is not None)
    assert fired[0] >= midnight and fired[0].astimezone(zone).date() == today + timedelta(days=1), fired
    assert fired[0] < midnight + timedelta(seconds=3), fired  # from the next day's first seconds
    assert any(r.scheduled_for is not None and r.scheduled_for < midnight for r in _rows(db, control.id))
    assert "Traceback" not in log, log


def test_backfill_of_50_fires_through_a_real_worker_records_each_once(
    esettings: Settings, db: Database, wf: Workflow, worker: CeleryProcess, redis_client: redis.Redis
) -> None:
    tr = _service(esettings, db, redis_client).add_trigger(wf.name, {"type": "cron", "expression": "0 * * * * ?"})
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    start = end - timedelta(minutes=49)
    window = ["--from", start.isoformat(), "--to", end.isoformat(), "--json"]
    out = json.loads(_cli(esettings, "trigger", "backfill", str(tr.id), *window).stdout)
    assert len(out["enqueued"]) == 50
    wait_for(lambda: len(_rows(db, tr.id)) >= 50 and all(ExecutionStatus(r.status).is_final for r in _rows(db, tr.id)),
             30, "50 final backfill executions")  # fmt: skip
    rows = _rows(db, tr.id)
    assert sorted(r.scheduled_for for r in rows) == [start + timedelta(minutes=i) for i in range(50)]
    assert all(r.backfill and r.jitter_ms is None for r in rows)
    # the workflow's policy (forbid) decided each fire: run, or skipped while another one ran
    assert {ExecutionStatus(r.status) for r in rows} <= {ExecutionStatus.SUCCEEDED, ExecutionStatus.SKIPPED}
    again = json.loads(_cli(esettings, "trigger", "backfill", str(tr.id), *window).stdout)
    assert again["enqueued"] == []
    history = json.loads(_cli(esettings, "history", "--trigger", str(tr.id), "--limit", "100", "--json").stdout)
    assert len(history) == 50 and all(h["backfill"] for h in history)


def test_pausing_a_label_pauses_exactly_those_triggers(
    esettings: Settings, db: Database, wf: Workflow, worker: CeleryProcess, redis_client: redis.Redis, tmp_path: Path
) -> None:
    svc = _service(esettings, db, redis_client)
    keys = Keys(esettings.key_prefix)
    spec = {"type": "cron", "expression": EVERY_SECOND}
    made = {
        n: svc.add_trigger(wf.name, spec, name=n, labels=labels)
        for n, labels in (("a", {"team": "finance"}), ("b", {"team": "finance"}), ("c", {"team": "ops"}))
    }
    with celery_beat(esettings, "-S", SCHEDULER, log_dir=tmp_path / "logs") as beat:
        wait_for(lambda: all(_rows(db, t.id) for t in made.values()), 20, "every trigger to fire")
        out = _cli(esettings, "trigger", "pause", "--label", "team=finance").stdout
        paused_at = datetime.now(UTC)
        assert out.split() == ["paused", "2", "trigger(s)", f"{wf.name}/a", f"{wf.name}/b"]
        # mirrored at once: the paused triggers' RedBeat entries are gone, the other one is there
        for n in ("a", "b"):
            assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(made[n].id)) is None
            assert not redis_client.exists(keys.redbeat_entry(made[n].id))
        assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(made["c"].id)) is not None
        later = paused_at + timedelta(seconds=2)
        wait_for(lambda: any(r.scheduled_for and r.scheduled_for > later for r in _rows(db, made["c"].id)), 20,
                 "the unpaused trigger to keep firing")  # fmt: skip
        log = beat.log()
    for n in ("a", "b"):
        assert svc.get_trigger(str(made[n].id)).state == "PAUSED"
        # nothing after the pause (a fire published just before it may still have been recorded)
        assert all(r.scheduled_for is not None and r.scheduled_for <= paused_at for r in _rows(db, made[n].id))
    assert svc.get_trigger(str(made["c"].id)).state in ("NORMAL", "BLOCKED")
    assert "Traceback" not in log, log
