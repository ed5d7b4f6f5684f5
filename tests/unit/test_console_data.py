"""The console's pure helpers: percentiles, the last hour's numbers, the timeline and heat strip."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from woow_scheduler.api.console.data import heat_strip, hour_stats, percentile, ticks, timeline
from woow_scheduler.views import ExecutionView, TriggerView

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Europe/Berlin springs forward


def execution(created: datetime, status: str = "succeeded", late: float | None = 0.5, **kw: Any) -> ExecutionView:
    scheduled = created - timedelta(seconds=1)
    return ExecutionView(
        id=uuid.uuid4(), workflow_id=uuid.uuid4(), trigger_id=kw.get("trigger_id", uuid.uuid4()), user_id="u",
        scheduled_for=scheduled, enqueued_at=None if late is None else scheduled + timedelta(seconds=late),
        started_at=None, finished_at=None, duration_ms=None, status=status, attempt=1, worker=None,
        celery_task_id=None, error=None, steps=[], created_at=created,
    )


def trigger(name: str, spec: dict[str, Any], state: str = "NORMAL", workflow: str = "wf", **kw: Any) -> TriggerView:
    return TriggerView(
        id=uuid.uuid4(), workflow_id=kw.get("workflow_id", uuid.uuid4()), workflow=workflow, name=name,
        type=spec["type"], spec=spec, timezone=spec.get("timezone", "UTC"), dst_policy="wall_clock", state=state,
        misfire_policy="fire_once_now", start_at=None, end_at=None, repeat_count=None, fire_count=0,
        previous_fire_time=kw.get("previous"), next_fire_time=kw.get("next"), version=1, created_by=None,
        created_at=NOW - timedelta(days=1),
    )


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.99) == 3.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0
    assert percentile(list(reversed(values)), 0.5) == 50.0


def test_hour_stats_counts_only_the_last_hour() -> None:
    rows = [
        execution(NOW - timedelta(minutes=1), late=0.2),
        execution(NOW - timedelta(minutes=2), "failed", late=4.0),
        execution(NOW - timedelta(minutes=3), "lock_lost", late=0.4),
        execution(NOW - timedelta(minutes=4), "succeeded", trigger_id=None),  # a manual run: not a fire
        execution(NOW - timedelta(minutes=61), "failed"),  # too old
    ]
    stats = hour_stats(rows, NOW)
    assert (stats.fires, stats.failures, stats.lock_losses) == (3, 1, 1)
    assert (stats.lateness_p50, stats.lateness_p99) == (0.4, 4.0)


def test_timeline_places_fires_in_the_window_with_local_and_utc_times() -> None:
    wid = uuid.uuid4()
    cron = trigger("night", {"type": "cron", "expression": "0 30 2 * * ?", "timezone": "Europe/Berlin"},
                   workflow_id=wid)
    paused = trigger("paused", {"type": "interval", "every": 3600, "timezone": "UTC",
                                "start_at": "2026-03-28T00:00:00Z"}, state="PAUSED", workflow_id=wid)
    done = trigger("done", {"type": "once", "run_at": "2026-03-29T01:00:00Z"}, state="COMPLETE")
    groups = timeline([cron, paused, done], NOW, 6, width=1000.0)
    assert [g.workflow for g in groups] == ["wf"] and len(groups[0].lanes) == 2  # COMPLETE is left out
    night, hourly = groups[0].lanes
    # 02:30 does not exist that night: wall_clock fires at 03:30 CEST = 01:30 UTC
    assert [f.utc for f in night.fires] == ["2026-03-29 01:30:00 UTC"]
    assert night.fires[0].local == "2026-03-29 03:30:00 Europe/Berlin"
    assert night.fires[0].x == round(3600 / (6 * 3600) * 1000, 2)
    assert len(hourly.fires) == 6 and all(0 < f.x <= 1000 for f in hourly.fires)


def test_timeline_marks_an_overdue_trigger_late_and_caps_busy_lanes() -> None:
    busy = trigger("busy", {"type": "interval", "every": 1, "timezone": "UTC", "start_at": "2026-03-28T00:00:00Z"},
                   next=NOW - timedelta(minutes=5))
    lane = timeline([busy], NOW, 1, width=1000.0)[0].lanes[0]
    assert lane.late and lane.more and len(lane.fires) == 200


def test_ticks_and_heat_strip() -> None:
    assert [label for _, label in ticks(NOW, 1, 1000.0)] == ["00:40", "00:50", "01:00", "01:10", "01:20"]
    start = NOW - timedelta(hours=3)
    rows = [execution(NOW - timedelta(minutes=5)), execution(NOW - timedelta(minutes=6), "timed_out"),
            execution(NOW - timedelta(hours=2, minutes=50)), execution(NOW - timedelta(hours=5))]
    cells = heat_strip(rows, start, NOW)
    assert [c.start.hour for c in cells] == [21, 22, 23, 0]
    assert [(c.succeeded, c.failed) for c in cells] == [(1, 0), (0, 0), (0, 0), (1, 1)]
