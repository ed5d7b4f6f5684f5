"""What the console's pages show, computed from the service layer and ``woow status``'s collection.

Nothing here writes; nothing here has SQL of its own.  The pure helpers (percentiles, the
timeline's and heat strip's geometry) take ``now`` and the rows as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ...enums import ExecutionStatus
from ...views import ExecutionView, TriggerView

if TYPE_CHECKING:
    from ..state import ApiState

FAILED = frozenset({ExecutionStatus.FAILED.value, ExecutionStatus.TIMED_OUT.value})
LOCK_LOST = ExecutionStatus.LOCK_LOST.value
#: the most executions one overview or heat strip reads (the count says "at least" beyond it)
ROW_LIMIT = 10_000
#: the most fires drawn per trigger in the timeline
FIRES_PER_TRIGGER = 200
WINDOWS = (1, 6, 24)


# -- overview ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by the nearest-rank method, or ``None`` without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass
class HourStats:
    fires: int = 0
    failures: int = 0
    lock_losses: int = 0
    lateness_p50: float | None = None
    lateness_p99: float | None = None
    capped: bool = False


def hour_stats(rows: Sequence[ExecutionView], now: datetime, *, capped: bool = False) -> HourStats:
    """Fires, failures, lock losses and publish lateness of the executions created in the last hour."""
    since = now - timedelta(hours=1)
    recent = [r for r in rows if r.created_at >= since]
    fires = [r for r in recent if r.trigger_id is not None and r.scheduled_for is not None]
    lateness = [
        (r.enqueued_at - r.scheduled_for).total_seconds()
        for r in fires
        if r.enqueued_at is not None and r.scheduled_for is not None
    ]
    return HourStats(
        fires=len(fires),
        failures=sum(1 for r in recent if r.status in FAILED),
        lock_losses=sum(1 for r in recent if r.status == LOCK_LOST),
        lateness_p50=percentile(lateness, 0.50),
        lateness_p99=percentile(lateness, 0.99),
        capped=capped,
    )


def overview(state: ApiState, owner: str | None) -> dict[str, Any]:
    """``woow status``'s report plus the last hour's numbers of the executions ``owner`` may see."""
    from ...cli.ops import collect_status

    report = collect_status(state)
    now = datetime.now(UTC)
    rows = state.service.history(since=now - timedelta(hours=1), limit=ROW_LIMIT, owner=owner)
    report["hour"] = hour_stats(rows, now, capped=len(rows) >= ROW_LIMIT)
    beat = report["checks"].get("beat", {})
    # a beat check with problems (no active beat, a stale tick) keeps what it read under "info"
    detail = beat.get("detail") if beat.get("ok") else beat.get("info")
    report["beat"] = detail if isinstance(detail, dict) else None
    return report


# -- upcoming ------------------------------------------------------------------------------------
@dataclass
class Fire:
    at: datetime
    x: float
    local: str
    utc: str


@dataclass
class Lane:
    trigger: TriggerView
    description: str
    fires: list[Fire] = field(default_factory=list)
    more: bool = False
    late: bool = False


@dataclass
class Group:
    workflow: str
    workflow_id: str
    lanes: list[Lane] = field(default_factory=list)


def _fmt_local(at: datetime, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return at.astimezone(zone).strftime(f"%Y-%m-%d %H:%M:%S {tz}")


def timeline(
    triggers: Iterable[TriggerView], now: datetime, hours: int, *, width: float
) -> list[Group]:
    """Every fire of the visible triggers in ``(now, now + hours]``, placed on ``width`` units."""
    from ...service import spec_from_stored

    end = now + timedelta(hours=hours)
    span = (end - now).total_seconds()
    groups: dict[str, Group] = {}
    for tr in triggers:
        if tr.state == "COMPLETE":
            continue
        spec = spec_from_stored(tr.spec)
        lane = Lane(trigger=tr, description=spec.describe())
        if tr.next_fire_time is not None and (now - tr.next_fire_time).total_seconds() > spec.misfire_threshold:
            lane.late = tr.state in ("NORMAL", "BLOCKED")
        after = max(t for t in (tr.previous_fire_time, now) if t is not None)
        for at in spec.iter_fire_times(after):
            if at > end:
                break
            if len(lane.fires) >= FIRES_PER_TRIGGER:
                lane.more = True
                break
            x = (at - now).total_seconds() / span * width
            lane.fires.append(Fire(at=at, x=round(x, 2), local=_fmt_local(at, tr.timezone), utc=_fmt_local(at, "UTC")))
        group = groups.setdefault(str(tr.workflow_id), Group(workflow=tr.workflow, workflow_id=str(tr.workflow_id)))
        group.lanes.append(lane)
    return sorted(groups.values(), key=lambda g: g.workflow)


def ticks(now: datetime, hours: int, width: float) -> list[tuple[float, str]]:
    """Axis marks: every hour (every 4 hours over a day), labelled in UTC."""
    step = 4 if hours > 12 else 1
    step_td = timedelta(minutes=10) if hours == 1 else timedelta(hours=step)
    span = timedelta(hours=hours).total_seconds()
    first = now.replace(second=0, microsecond=0)
    first = first.replace(minute=(first.minute // 10) * 10) if hours == 1 else first.replace(minute=0)
    out: list[tuple[float, str]] = []
    t = first + step_td
    while t < now + timedelta(hours=hours):
        out.append((round((t - now).total_seconds() / span * width, 2), t.strftime("%H:%M")))
        t += step_td
    return out


# -- history heat strip --------------------------------------------------------------------------
@dataclass
class HourCell:
    start: datetime
    succeeded: int = 0
    failed: int = 0


def heat_strip(rows: Iterable[ExecutionView], start: datetime, end: datetime) -> list[HourCell]:
    """Successes and failures per hour from ``start`` (floored to the hour) to ``end``."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    cells: list[HourCell] = []
    t = first
    while t < end and len(cells) < 24 * 31:
        cells.append(HourCell(start=t))
        t += timedelta(hours=1)
    for r in rows:
        i = int((r.created_at - first).total_seconds() // 3600)
        if 0 <= i < len(cells):
            if r.status == "succeeded":
                cells[i].succeeded += 1
            elif r.status in FAILED or r.status == LOCK_LOST:
                cells[i].failed += 1
    return cells
