"""Scenario 9: a pool child running a `forbid` workflow is frozen (SIGSTOP) for twice the lock TTL.

Its lease expires while it is frozen and the next fires of the workflow take the lock and run.
When the child resumes, the stalled run must notice before its next step and stop: recorded
`lock_lost`, never `succeeded`, and no step of two runs overlaps in the journal.  The workflows
pause in a plain `sleep` step before their journal step, and the child is frozen during that pause,
so the journal shows exactly what ran while the stalled run believed it held the lock.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.db import Execution
from woow_scheduler.enums import ExecutionStatus

SIZES = sizes(
    Size("full", triggers=6, window=70, faults=3),
    Size("reduced", triggers=3, window=30, faults=1),
)
PAUSE = 2.0


def _pausing(env: ChaosEnv, parents: set[int]) -> list[tuple[str, int]]:
    """Runs on a pool child still inside their first (pause) step: (execution id, child pid)."""
    recent = datetime.now(UTC) - timedelta(seconds=PAUSE / 2)
    with env.db.session() as s:
        rows = s.execute(
            select(Execution.id, Execution.worker).where(
                Execution.status == ExecutionStatus.RUNNING, Execution.started_at > recent
            )
        ).all()
    out = []
    for r in rows:
        pid = int(r.worker.rsplit(":", 1)[1]) if r.worker else 0
        if pid and pid not in parents:
            out.append((str(r.id), pid))
    return out


def _status(env: ChaosEnv, ex_id: str) -> tuple[ExecutionStatus, str | None]:
    with env.db.session() as s:
        row = s.execute(select(Execution.status, Execution.error).where(Execution.id == ex_id)).one()
    return ExecutionStatus(row.status), row.error


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_stalled_run_is_recorded_lock_lost(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    ttl = env.settings.lock_ttl
    env.load(size.triggers, min_period=3, max_period=5, step_seconds=0.3, pre_sleep=PAUSE)
    beat = env.beat("a")
    workers = [env.worker("w1"), env.worker("w2")]
    parents = {w.pid for w in workers}
    time.sleep(3)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    stalled: list[str] = []
    for _ in range(size.faults):
        until = time.monotonic() + 20
        caught: list[tuple[str, int]] = []
        while time.monotonic() < until and not caught:
            caught = _pausing(env, parents)
            time.sleep(0.05)
        assert caught, "no run to freeze"
        ex_id, child = caught[0]
        os.kill(child, signal.SIGSTOP)
        try:
            time.sleep(2 * ttl)
        finally:
            os.kill(child, signal.SIGCONT)
        stalled.append(ex_id)
        until = time.monotonic() + 30
        while not _status(env, ex_id)[0].is_final:
            assert time.monotonic() < until, f"stalled run {ex_id} never finished"
            time.sleep(0.2)
        status, error = _status(env, ex_id)
        assert status == ExecutionStatus.LOCK_LOST, (ex_id, status, error)
        assert "stopped before step 'journal'" in (error or "")
        time.sleep(max(0.0, min(5.0, deadline - time.monotonic()) - 1))
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    settled = env.settle(t0, t1)
    tally = env.classify(t0, t1, scenario="9 stalled run (SIGSTOP)", size=size.name)
    tally.extra.update(stalled=len(stalled), settle_s=round(settled, 1))
    tally.publish()
    tally.check()
    # only the frozen runs lost their lock (a frozen fire published just before t0 is outside the count)
    assert tally.lock_lost <= len(stalled), tally.problems
    assert tally.overlaps == 0
