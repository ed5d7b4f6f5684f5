"""Fire accounting: every nominal fire of a window, classified from PostgreSQL rows and the run journal.

Expected fires come from the project's own engine (``spec.iter_fire_times``) from the later of the
window start and the trigger's anchor (fires at or before it never count).  Each is then:

- ``ran_once``: one row, ``succeeded``, and exactly one completed run in the journal;
- ``duplicated``: more than one completed run of its execution (the unique key makes two rows
  impossible), plus every overlap of two runs of one ``forbid``/``queue`` workflow;
- ``skipped_by_policy``: a ``skipped`` row whose reason is the concurrency rule (lock held,
  queue wait exceeded), or no row for a fire inside a fault window when the trigger's misfire
  policy (``skip``/``fire_once_now``) allows dropping it (the outage outlasted its threshold);
- ``lost``: anything else (no row, a row stuck unfinished, a success without a run); these are
  "unexplained" and every scenario asserts there are none.

Besides: ``failed`` rows, ``spurious`` rows (a ``scheduled_for`` that is not a nominal fire of
its trigger) and ``late_beyond_policy`` (dispatched later than the misfire threshold more often
than the policy allows: a catch-up burst).
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from woow_scheduler.db import Database, Execution, Trigger, Workflow
from woow_scheduler.enums import ConcurrencyPolicy, ExecutionStatus
from woow_scheduler.service import spec_from_stored
from woow_scheduler.triggers import MisfirePolicy, TriggerSpec

SLACK = timedelta(seconds=1.5)
ACTIVE = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.RETRYING)
POLICY_SKIP_REASONS = ("lock held by execution", "max_queue_wait")

#: rows of the summary table, in the order the scenarios ran (printed by conftest's hook)
RESULTS: list[dict[str, Any]] = []


@dataclass(frozen=True)
class TriggerInfo:
    id: uuid.UUID
    workflow_id: uuid.UUID
    spec: TriggerSpec
    anchor: datetime
    concurrency: ConcurrencyPolicy


@dataclass(frozen=True)
class Fault:
    """A span in which beat could not fire (``start``) until it fired again (``end``)."""

    label: str
    start: datetime
    end: datetime


@dataclass
class Run:
    run: str
    execution_id: str
    workflow_id: str
    start: float
    end: float | None = None


@dataclass
class Tally:
    scenario: str
    size: str
    fires_expected: int = 0
    ran_once: int = 0
    duplicated: int = 0
    lost: int = 0
    skipped_by_policy: int = 0
    skipped_concurrency: int = 0
    skipped_misfire: int = 0
    failed: int = 0
    lock_lost: int = 0  # runs stopped because they lost their lock (recorded, never a clean success)
    spurious: int = 0
    overlaps: int = 0
    late_beyond_policy: int = 0
    recovery_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.problems) < 25:
            self.problems.append(text)

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("problems")
        return data

    def publish(self) -> None:
        RESULTS.append(self.row())

    def check(self) -> None:
        """What every scenario asserts: no duplicate, no unexplained loss, no failure, no burst."""
        bad = {
            k: getattr(self, k)
            for k in ("duplicated", "lost", "failed", "spurious", "late_beyond_policy")
            if getattr(self, k)
        }
        assert self.fires_expected > 0, "the scenario expected no fire at all"
        assert not bad, f"{self.scenario}/{self.size}: {bad}; examples: {self.problems}"


def load_triggers(db: Database, trigger_ids: Iterable[uuid.UUID] | None = None) -> list[TriggerInfo]:
    stmt = select(Trigger.id, Trigger.workflow_id, Trigger.spec, Trigger.anchor_at, Workflow.concurrency).join(
        Workflow, Workflow.id == Trigger.workflow_id
    )
    if trigger_ids is not None:
        stmt = stmt.where(Trigger.id.in_(list(trigger_ids)))
    with db.session() as s:
        rows = s.execute(stmt).all()
    # fires at or before the trigger's anchor never count (schedule.WoowTriggerSchedule, floored to the second)
    return [
        TriggerInfo(r.id, r.workflow_id, spec_from_stored(r.spec), r.anchor_at.replace(microsecond=0), r.concurrency)
        for r in rows
    ]


def expected_fires(trigger: TriggerInfo, t0: datetime, t1: datetime) -> list[datetime]:
    out = []
    for fire in trigger.spec.iter_fire_times(max(t0, trigger.anchor)):
        if fire > t1:
            break
        out.append(fire)
    return out


def read_journal(path: Path) -> dict[str, list[Run]]:
    """Runs by execution id."""
    runs: dict[str, Run] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            run = runs.get(rec["r"])
            if run is None:
                run = runs[rec["r"]] = Run(rec["r"], rec["e"], rec["w"], rec["t"])
            if rec["k"] == "start":
                run.start = rec["t"]
            else:
                run.end = rec["t"]
    by_exec: dict[str, list[Run]] = defaultdict(list)
    for run in runs.values():
        by_exec[run.execution_id].append(run)
    return by_exec


def fetch_rows(db: Database, trigger_ids: Sequence[uuid.UUID]) -> list[Any]:
    cols = (
        Execution.id,
        Execution.trigger_id,
        Execution.workflow_id,
        Execution.scheduled_for,
        Execution.status,
        Execution.error,
        Execution.enqueued_at,
        Execution.started_at,
        Execution.finished_at,
    )
    out: list[Any] = []
    with db.session() as s:
        for i in range(0, len(trigger_ids), 5000):
            out.extend(s.execute(select(*cols).where(Execution.trigger_id.in_(trigger_ids[i : i + 5000]))).all())
    return out


def _excused(trigger: TriggerInfo, fire: datetime, faults: Sequence[Fault]) -> bool:
    """May the misfire policy have dropped this fire (no row) because of a fault?"""
    if trigger.spec.misfire_policy is MisfirePolicy.FIRE_ALL:
        return False
    threshold = timedelta(seconds=trigger.spec.misfire_threshold)
    return any(f.end - f.start + SLACK > threshold and f.start - SLACK <= fire <= f.end + SLACK for f in faults)


def pending(db: Database, triggers: Sequence[TriggerInfo], t0: datetime, t1: datetime, faults: Sequence[Fault]) -> int:
    """Expected fires not yet settled: no final row and not excusable, plus rows still active."""
    rows = {(r.trigger_id, r.scheduled_for): r for r in fetch_rows(db, [t.id for t in triggers])}
    count = sum(1 for r in rows.values() if r.status in ACTIVE)
    for trig in triggers:
        for fire in expected_fires(trig, t0, t1):
            row = rows.get((trig.id, fire))
            if row is None and not _excused(trig, fire, faults):
                count += 1
    return count


def classify(
    db: Database,
    triggers: Sequence[TriggerInfo],
    t0: datetime,
    t1: datetime,
    *,
    scenario: str,
    size: str,
    journal: Path,
    faults: Sequence[Fault] = (),
    kills: Sequence[float] = (),
) -> Tally:
    """Classify every nominal fire in ``(t0, t1]``; ``kills`` are epoch times worker processes were killed."""
    tally = Tally(scenario, size)
    by_id = {t.id: t for t in triggers}
    rows = fetch_rows(db, list(by_id))
    by_fire = {(r.trigger_id, r.scheduled_for): r for r in rows}
    runs = read_journal(journal)

    for trig in triggers:
        nominal = expected_fires(trig, t0, t1)
        tally.fires_expected += len(nominal)
        for fire in nominal:
            row = by_fire.get((trig.id, fire))
            what = f"trigger {trig.id} fire {fire.isoformat()}"
            if row is None:
                if _excused(trig, fire, faults):
                    tally.skipped_misfire += 1
                else:
                    tally.lost += 1
                    tally.note(f"{what}: no execution row")
                continue
            completed = [r for r in runs.get(str(row.id), []) if r.end is not None]
            if len(completed) > 1:
                tally.duplicated += 1
                tally.note(f"{what}: ran {len(completed)} times (execution {row.id})")
                continue
            status = ExecutionStatus(row.status)
            if status is ExecutionStatus.SUCCEEDED:
                if len(completed) == 1:
                    tally.ran_once += 1
                else:
                    tally.lost += 1
                    tally.note(f"{what}: succeeded without a journal run")
            elif status is ExecutionStatus.SKIPPED:
                if any(reason in (row.error or "") for reason in POLICY_SKIP_REASONS):
                    tally.skipped_concurrency += 1
                else:
                    tally.lost += 1
                    tally.note(f"{what}: skipped ({row.error})")
            elif status is ExecutionStatus.LOCK_LOST:
                tally.lock_lost += 1
                tally.note(f"{what}: lock_lost ({row.error})")
            elif status in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
                tally.failed += 1
                tally.note(f"{what}: {status.value} ({row.error})")
            else:
                tally.lost += 1
                tally.note(f"{what}: still {status.value}")
    tally.skipped_by_policy = tally.skipped_concurrency + tally.skipped_misfire

    # rows at times that are not nominal fires of their trigger (inside the window)
    for r in rows:
        trig = by_id[r.trigger_id]
        if r.scheduled_for is None or not (t0 < r.scheduled_for <= t1) or r.scheduled_for <= trig.anchor:
            continue
        prev = r.scheduled_for - timedelta(seconds=1)
        if trig.spec.next_fire_time(prev) != r.scheduled_for:
            tally.spurious += 1
            tally.note(f"trigger {trig.id}: row at non-nominal time {r.scheduled_for.isoformat()}")

    tally.late_beyond_policy = _late_beyond_policy(rows, by_id, faults, tally)
    tally.overlaps = _overlaps(triggers, runs, kills, tally)
    tally.duplicated += tally.overlaps
    return tally


def _late_beyond_policy(
    rows: Sequence[Any], by_id: dict[uuid.UUID, TriggerInfo], faults: Sequence[Fault], tally: Tally
) -> int:
    """Fires dispatched later than their threshold, beyond what the misfire policy allows per fault."""
    late: dict[uuid.UUID, int] = defaultdict(int)
    for r in rows:
        if r.scheduled_for is None or r.enqueued_at is None:
            continue
        trig = by_id[r.trigger_id]
        if r.enqueued_at - r.scheduled_for > timedelta(seconds=trig.spec.misfire_threshold) + SLACK:
            late[trig.id] += 1
    excess = 0
    for tid, n in late.items():
        spec = by_id[tid].spec
        per_fault = {
            MisfirePolicy.SKIP: 0,
            MisfirePolicy.FIRE_ONCE_NOW: 1,
            MisfirePolicy.FIRE_ALL: spec.max_catchup,
        }[spec.misfire_policy]
        allowed = per_fault * len(faults)
        if n > allowed:
            excess += n - allowed
            tally.note(f"trigger {tid}: {n} late dispatches, policy {spec.misfire_policy} allows {allowed}")
    return excess


def _overlaps(
    triggers: Sequence[TriggerInfo], runs: dict[str, list[Run]], kills: Sequence[float], tally: Tally
) -> int:
    """Runs of one no-concurrency workflow that overlapped in time (a killed run ends at its kill)."""
    exclusive = {str(t.workflow_id) for t in triggers if t.concurrency is not ConcurrencyPolicy.ALLOW}
    per_wf: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    open_runs = 0
    for exec_runs in runs.values():
        for run in exec_runs:
            if run.workflow_id not in exclusive:
                continue
            end = run.end
            if end is None:
                open_runs += 1
                end = min((k for k in kills if k >= run.start), default=float("inf"))
            per_wf[run.workflow_id].append((run.start, end, run.execution_id))
    tally.extra["open_runs"] = open_runs
    count = 0
    for wf, spans in per_wf.items():
        spans.sort()
        latest_end, latest_exec = float("-inf"), ""
        for start, end, exec_id in spans:
            if start < latest_end:
                count += 1
                gap = latest_end - start
                tally.note(f"workflow {wf}: run of {exec_id} started {gap:.3f}s before {latest_exec} ended")
            if end > latest_end:
                latest_end, latest_exec = end, exec_id
    return count


def lateness(rows: Sequence[Any]) -> dict[str, float]:
    """Dispatch (enqueued_at) and start (started_at) lateness against scheduled_for, in seconds."""
    out: dict[str, float] = {}
    for name, attr in (("dispatch", "enqueued_at"), ("start", "started_at")):
        values = sorted(
            (getattr(r, attr) - r.scheduled_for).total_seconds()
            for r in rows
            if getattr(r, attr) is not None and r.scheduled_for is not None and r.status == ExecutionStatus.SUCCEEDED
        )
        if values:
            out[f"{name}_p50_s"] = round(statistics.median(values), 3)
            out[f"{name}_p99_s"] = round(values[min(len(values) - 1, int(len(values) * 0.99))], 3)
            out[f"{name}_max_s"] = round(values[-1], 3)
    return out
