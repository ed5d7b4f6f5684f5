"""Scenario 4: PostgreSQL is stopped (immediate shutdown) and restarted.

Beat keeps firing from Redis (its PostgreSQL side only logs); workers meet the outage, retry with
backoff, and after recovery every fire has exactly one execution row.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow

SIZES = sizes(
    Size("full", triggers=30, window=45, outage=20),
    Size("reduced", triggers=10, window=20, outage=8),
)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_postgres_stopped_and_restarted(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    env.load(size.triggers, min_period=2, max_period=5, step_seconds=0.2)
    beat = env.beat("a")
    env.worker("w1")
    env.worker("w2")
    time.sleep(3)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    time.sleep(max(1.0, (deadline - time.monotonic() - size.outage) / 2))
    env.db.dispose()
    env.pg.stop()
    down_at = utcnow()
    time.sleep(size.outage)
    env.pg.start()
    up_at, up_mono = utcnow(), time.monotonic()
    env.db.dispose()
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    settled = env.settle(t0, t1, timeout=150)
    rows = env.rows()
    in_outage = [r for r in rows if r.scheduled_for and down_at < r.scheduled_for <= up_at]
    finished = [r.finished_at for r in in_outage if r.finished_at]
    on_time = [r for r in in_outage if r.enqueued_at and r.enqueued_at - r.scheduled_for < timedelta(seconds=2)]
    tally = env.classify(t0, t1, scenario="4 PostgreSQL stopped", size=size.name)
    tally.recovery_s = round(max(finished).timestamp() - up_at.timestamp(), 2) if finished else None
    worker_logs = "".join(p.log() for p in env.procs if p.kind == "worker")
    tally.extra.update(
        outage_s=size.outage,
        fires_in_outage=len(in_outage),
        dispatched_on_time_in_outage=len(on_time),
        store_retries_logged=worker_logs.count("store unavailable; fire retried later"),
        settle_s=round(settled + (time.monotonic() - up_mono) * 0, 1),
    )
    tally.publish()
    tally.check()
    assert in_outage and len(on_time) == len(in_outage), "beat did not keep firing on time during the outage"
