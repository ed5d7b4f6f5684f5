"""Scenario 7: Redis behind Sentinel; the master is killed (SIGKILL) while fires flow.

Schedule, locks and broker all live on the Sentinel set-up (one ``sentinel://`` URL): a master,
one replica and three sentinels of the scenario's own (tests/support/sentinel.py).  The sentinels promote
the replica; beat (two of them), RedBeat, the broker connections and the workers' lock clients
ask the sentinels for the new master when they reconnect.  The accounting is the usual one: every
fire of the window ran once, or is explained by the misfire policy across the gap; the gap in
firing (kill -> first fire published after it) is measured.  A lock that the failover lost
(asynchronous replication) must be caught by the lock's fencing, never show as an overlap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.chaos.accounting import Fault
from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from tests.support.sentinel import SentinelSetup, sentinel_setup
from tests.support.servers import throwaway_postgres

SIZES = sizes(
    Size("full", triggers=40, window=60, faults=2),
    Size("reduced", triggers=10, window=20, faults=1),
)


@pytest.fixture
def sentinel_env(tmp_path: Path) -> Iterator[tuple[ChaosEnv, SentinelSetup]]:
    with throwaway_postgres() as pg, sentinel_setup(tmp_path / "sentinel") as setup:
        env = ChaosEnv(pg, SimpleNamespace(url=setup.url), tmp_path)  # type: ignore[arg-type]
        try:
            yield env, setup
        finally:
            env.close()


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_sentinel_master_killed_while_fires_flow(sentinel_env: tuple[ChaosEnv, SentinelSetup], size: Size) -> None:
    env, setup = sentinel_env
    env.load(size.triggers, min_period=1, max_period=4, step_seconds=0.1, mixed_misfire=True)
    beats = [env.beat("a"), env.beat("b")]
    env.worker("w1")
    env.worker("w2")
    time.sleep(4)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    faults: list[Fault] = []
    promotions: list[float] = []
    for k in range(size.faults):
        time.sleep(max(1.0, (deadline - time.monotonic()) / (size.faults - k + 1)))
        down_at = utcnow()
        promotions.append(setup.kill_master())
        faults.append(Fault(f"master killed {k}", down_at, utcnow()))
        if k + 1 < size.faults:  # the killed one comes back as a replica of the new master
            setup.restart_as_replica()
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    for b in beats:
        b.stop()
    rows = env.rows()
    # the fault lasts until beat fires again: the first dispatch after the kill
    gaps = []
    measured = []
    for f in faults:
        after = [r.enqueued_at for r in rows if r.enqueued_at and r.enqueued_at > f.start]
        resumed = min(after, default=f.end)
        gaps.append(round((resumed - f.start).total_seconds(), 2))
        measured.append(Fault(f.label, f.start, max(resumed, f.end)))
    settled = env.settle(t0, t1, measured)
    tally = env.classify(t0, t1, scenario="7 Sentinel master killed", size=size.name, faults=measured)
    logs = "".join(p.log() for p in env.procs)
    tally.recovery_s = max(gaps)
    tally.extra.update(
        sentinel_promotion_s=[round(p, 2) for p in promotions],
        fire_gap_s=gaps,
        duplicate_deliveries_ignored=logs.count("duplicate delivery ignored"),
        lost_lock_runs=logs.count("outcome not recorded: the execution was taken over"),
        settle_s=round(settled, 1),
    )
    tally.publish()
    tally.check()
    last_fault = max(f.end for f in measured)
    assert any(r.enqueued_at and r.enqueued_at > last_fault + timedelta(seconds=1) for r in rows), "no fire after it"
    assert max(gaps) < 30, f"firing stopped for {max(gaps)} s"
