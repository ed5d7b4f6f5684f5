"""Scenario 1: a worker is killed with SIGKILL in the middle of runs.

acks_late puts its messages back after the visibility timeout, the dead run's lock expires after
lock_ttl, and the redelivered fire takes the stale execution over: every fire completes once.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.db import Execution
from woow_scheduler.enums import ExecutionStatus

SIZES = sizes(
    Size("full", triggers=20, window=75, faults=3),
    Size("reduced", triggers=8, window=25, faults=1),
)


FRESH_S = 0.3  # steps run 0.5-1.5 s


def _running_on(env: ChaosEnv, pids: set[int]) -> list[str]:
    """Runs on ``pids`` that started within ``FRESH_S``: with steps of at least 0.5 s they are still
    running when the SIGKILL lands (a run caught in its last milliseconds finished before the kill
    in a CI run, and the scenario then had nothing to take over)."""
    with env.db.session() as s:
        rows = s.execute(
            select(Execution.id, Execution.worker).where(
                Execution.status == ExecutionStatus.RUNNING,
                Execution.started_at >= utcnow() - timedelta(seconds=FRESH_S),
            )
        ).all()
    return [str(r.id) for r in rows if r.worker and int(r.worker.rsplit(":", 1)[1]) in pids]


def _final(env: ChaosEnv, ids: list[str]) -> bool:
    with env.db.session() as s:
        rows = s.execute(select(Execution.status).where(Execution.id.in_(ids))).scalars().all()
    return all(ExecutionStatus(st).is_final for st in rows)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_worker_kill9_mid_run(chaos_env: ChaosEnv, size: Size, scenario: str = "1 worker kill -9") -> None:
    env = chaos_env
    env.load(size.triggers, min_period=5, max_period=10, step_seconds=(0.5, 1.5))
    beat = env.beat("a")
    workers = [env.worker("w1"), env.worker("w2")]
    time.sleep(3)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    kills: list[float] = []
    recoveries: list[float] = []
    interrupted = 0
    for k in range(size.faults):
        victim = workers[k % 2]
        # wait until the victim is in the middle of a run
        until = time.monotonic() + 15
        caught: list[str] = []
        while time.monotonic() < until and not caught:
            caught = _running_on(env, set(victim.group_pids()) - {victim.pid})
            time.sleep(0.1)
        assert caught, "no run to interrupt"
        # the instant of the SIGKILL, not of kill9()'s return (it also waits for the group to be
        # reaped): a broker that redelivers at once (RabbitMQ) and a takeover of a holder whose pid
        # is gone can start the new run inside that wait, which is no overlap
        kills.append(time.time())
        victim.kill9()
        killed = time.monotonic()
        interrupted += len(caught)
        workers[k % 2] = env.worker(f"w{k % 2 + 1}-r{k}")
        while not _final(env, caught):
            assert time.monotonic() - killed < 60, f"interrupted runs never finished: {caught}"
            time.sleep(0.2)
        recoveries.append(time.monotonic() - killed)
        time.sleep(max(0.0, min(8.0, deadline - time.monotonic()) - 1))
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    settled = env.settle(t0, t1)
    tally = env.classify(t0, t1, scenario=scenario, size=size.name, kills=kills)
    logs = "".join(w.log() for w in env.procs if w.kind == "worker")
    tally.recovery_s = round(max(recoveries), 2)
    tally.extra.update(
        kills=len(kills),
        interrupted_runs=interrupted,
        takeovers=logs.count("took over a stale execution"),
        recovery_each_s=[round(r, 2) for r in recoveries],
        settle_s=round(settled, 1),
    )
    tally.publish()
    tally.check()
    assert tally.extra["takeovers"] >= 1, "no redelivered fire took a stale execution over"
