"""Scenario 8: only a pool child is killed (`kill -9` of the child, the OOM killer's usual victim).

The worker's main process lives on and Celery requeues the message at once
(``reject_on_worker_lost``); the dead run's lock is still alive.  The redelivered fire must take
the run over as soon as the holder is known dead (same node, pid gone) or its lock expires -- never
be dropped as a duplicate -- and every interrupted fire ends ``succeeded``.  Runs last longer than
the lock TTL, so waiting for the two-hour reaper would show.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import select

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.db import Execution
from woow_scheduler.enums import ExecutionStatus

SIZES = sizes(
    # within the workers' capacity (4 pool processes; runs of 5-6 s every 8-12 s need about 0.55 of
    # a process per trigger): an overloaded queue would delay the redelivered fire behind others
    Size("full", triggers=6, window=70, faults=3),
    Size("reduced", triggers=4, window=30, faults=1),
)


def _running_children(env: ChaosEnv, parents: set[int]) -> dict[str, tuple[int, str | None]]:
    """Running executions on a pool child (not a worker's main process): id -> (child pid, lock token)."""
    with env.db.session() as s:
        rows = s.execute(
            select(Execution.id, Execution.worker, Execution.lock_token).where(
                Execution.status == ExecutionStatus.RUNNING
            )
        ).all()
    found = {}
    for r in rows:
        pid = int(r.worker.rsplit(":", 1)[1]) if r.worker else 0
        if pid and pid not in parents:
            found[str(r.id)] = (pid, r.lock_token)
    return found


def _state(env: ChaosEnv, ids: list[str]) -> dict[str, tuple[ExecutionStatus, str | None]]:
    with env.db.session() as s:
        rows = s.execute(select(Execution.id, Execution.status, Execution.lock_token).where(Execution.id.in_(ids)))
        return {str(r.id): (ExecutionStatus(r.status), r.lock_token) for r in rows}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_pool_child_kill9(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    ttl = env.settings.lock_ttl
    env.load(size.triggers, min_period=8, max_period=12, step_seconds=(ttl + 1.0, ttl + 2.0))
    beat = env.beat("a")
    workers = [env.worker("w1"), env.worker("w2")]
    parents = {w.pid for w in workers}
    time.sleep(3)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    kills: list[float] = []
    takeovers: list[float] = []
    interrupted = 0
    for _ in range(size.faults):
        until = time.monotonic() + 20
        caught: dict[str, tuple[int, str | None]] = {}
        while time.monotonic() < until and not caught:
            caught = _running_children(env, parents)
            time.sleep(0.1)
        assert caught, "no run to interrupt"
        ex_id, (child, token) = next(iter(caught.items()))
        os.kill(child, signal.SIGKILL)  # the child only: its worker's main process lives on
        killed = time.monotonic()
        kills.append(time.time())
        interrupted += 1
        while True:
            status, now_token = _state(env, [ex_id])[ex_id]
            if now_token != token or status.is_final:
                break
            assert time.monotonic() - killed < ttl + 10, f"run {ex_id} not taken over within lock TTL + 10 s"
            time.sleep(0.1)
        takeovers.append(time.monotonic() - killed)
        while not _state(env, [ex_id])[ex_id][0].is_final:
            assert time.monotonic() - killed < 60, f"interrupted run {ex_id} never finished"
            time.sleep(0.2)
        assert _state(env, [ex_id])[ex_id][0] == ExecutionStatus.SUCCEEDED
        time.sleep(max(0.0, min(6.0, deadline - time.monotonic()) - 1))
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    settled = env.settle(t0, t1)
    tally = env.classify(t0, t1, scenario="8 pool-child kill -9", size=size.name, kills=kills)
    logs = "".join(w.log() for w in env.procs if w.kind == "worker")
    tally.recovery_s = round(max(takeovers), 2)
    tally.extra.update(
        kills=len(kills),
        interrupted_runs=interrupted,
        takeovers=logs.count("took over a stale execution"),
        takeover_each_s=[round(r, 2) for r in takeovers],
        settle_s=round(settled, 1),
    )
    tally.publish()
    tally.check()
    assert all(w.proc is not None and w.proc.poll() is None for w in workers), "a worker's main process died"
