"""Scenario 10: a `forbid` workflow is edited to `allow` while a run is in progress, and the same
fire is delivered again (a redelivery, a beat failover).

Liveness checks must read the lock pinned on the row at claim time, not today's policy: the
duplicate delivery must not take the live run over (one run per fire), and the reaper must not
fail that live run either.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.db import Execution, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.messaging.publish import enqueue_fire
from woow_scheduler.scheduler.reaper import reap_lost_runs
from woow_scheduler.service import Service
from woow_scheduler.worker import get_app

SIZES = sizes(
    Size("full", triggers=8, window=60, faults=3),
    Size("reduced", triggers=3, window=25, faults=1),
)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_policy_flip_mid_run(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    env.load(size.triggers, min_period=6, max_period=9, step_seconds=(3.0, 4.0))
    app = get_app(env.settings)
    svc = Service(env.db, env.settings)
    beat = env.beat("a")
    env.worker("w1")
    env.worker("w2")
    time.sleep(3)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    flipped: list[str] = []
    for _ in range(size.faults):
        until = time.monotonic() + 20
        row = None
        while time.monotonic() < until and row is None:
            with env.db.session() as s:
                row = s.execute(
                    select(Execution, Workflow.name)
                    .join(Workflow, Workflow.id == Execution.workflow_id)
                    .where(Execution.status == ExecutionStatus.RUNNING, Workflow.concurrency == "forbid")
                    .limit(1)
                ).first()
            time.sleep(0.1)
        assert row is not None, "no forbid run to edit under"
        ex, name = row
        svc.update_workflow(name, {"concurrency": "allow"})
        flipped.append(str(ex.id))
        for _ in range(2):  # the same fire, delivered again twice
            enqueue_fire(
                app,
                env.settings,
                workflow_id=ex.workflow_id,
                workflow_name=name,
                trigger_id=ex.trigger_id,
                user_id=ex.user_id,
                scheduled_for=ex.scheduled_for,
            )
        later = utcnow().replace(year=utcnow().year + 1)  # far past every reaper cutoff
        client = env.redis()
        try:
            assert ex.id not in reap_lost_runs(env.settings, env.db, client, now=later), "reaper failed a live run"
        finally:
            client.close()
        time.sleep(max(0.0, min(6.0, deadline - time.monotonic()) - 1))
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    settled = env.settle(t0, t1)
    tally = env.classify(t0, t1, scenario="10 policy flip", size=size.name)
    logs = "".join(w.log() for w in env.procs if w.kind == "worker")
    tally.extra.update(flips=len(flipped), takeovers=logs.count("took over"), settle_s=round(settled, 1))
    tally.publish()
    tally.check()
    with env.db.session() as s:
        rows = s.execute(select(Execution.status, Execution.attempt).where(Execution.id.in_(flipped))).all()
    assert [r.status for r in rows] == [ExecutionStatus.SUCCEEDED] * len(flipped)
    assert all(r.attempt == 1 for r in rows)
    assert tally.extra["takeovers"] == 0, "a duplicate delivery took a live run over"
