"""Real beat and worker processes: the Quartz trigger types, a calendar and jitter as they fire."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.procs import CeleryProcess, celery_beat, celery_worker, wait_for
from woow_scheduler.calendars import calendar_json, parse_calendar
from woow_scheduler.db import CalendarRow, Database, Execution, Trigger, Workflow
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
