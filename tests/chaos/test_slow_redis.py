"""Scenario 5: the workers reach Redis over a slow network (a delaying loopback proxy).

Every chunk in either direction is held 0.25-0.5 s, so a lock renewal round trip (0.5-1 s) is as
slow as the renewal period (lock_ttl/3 = 1 s).  Runs of 5 s outlive the 3 s TTL; they must keep
their locks throughout (no "lock lost"), and no two runs of one forbid workflow may overlap.  The
load is light (a fire every 12 s per workflow): over this link one execution costs about 1.5 s
of Redis round trips besides its 5 s step, and a heavier load only builds a backlog.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from tests.chaos.proxy import DelayProxy

SIZES = sizes(
    Size("full", triggers=5, window=60),
    Size("reduced", triggers=3, window=25),
)
DELAY, JITTER, LOCK_TTL, RUN_SECONDS = 0.25, 0.25, 3.0, 5.0


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_slow_redis_keeps_locks(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    env.load(size.triggers, min_period=12, max_period=12, kinds=("interval",), step_seconds=RUN_SECONDS)
    # the link turns slow once the workers are up (a worker's start-up over it takes half a minute)
    with DelayProxy(env.redis_server.port, delay=0.0, jitter=0.0) as proxy:
        slow = env.make_settings(redis_url=proxy.url, lock_ttl=LOCK_TTL, visibility_timeout=60)
        env.worker("w1", settings=slow)
        env.worker("w2", settings=slow)
        proxy.delay, proxy.jitter = DELAY, JITTER
        beat = env.beat("a")
        time.sleep(3)
        t0 = utcnow()
        time.sleep(size.window)
        t1 = utcnow()
        time.sleep(1.5)
        beat.stop()
        settled = env.settle(t0, t1, timeout=120)
        chunks, max_hold = proxy.chunks, proxy.max_hold
    tally = env.classify(t0, t1, scenario="5 slow Redis (proxy)", size=size.name)
    worker_logs = "".join(p.log() for p in env.procs if p.kind == "worker")
    rows = [r for r in env.rows() if r.started_at and r.finished_at and r.status == "succeeded"]
    longest = max(((r.finished_at - r.started_at).total_seconds() for r in rows), default=0.0)
    tally.extra.update(
        delay_per_chunk_s=f"{DELAY}-{DELAY + JITTER}",
        lock_ttl_s=LOCK_TTL,
        longest_run_s=round(longest, 2),
        proxied_chunks=chunks,
        max_hold_s=round(max_hold, 3),
        lock_lost_lines=worker_logs.count("lock lost"),
        renewal_failures=worker_logs.count("lock renewal of"),
        settle_s=round(settled, 1),
    )
    tally.publish()
    tally.check()
    assert tally.ran_once > 0
    assert longest > LOCK_TTL, "no run outlived the lock TTL"
    assert tally.extra["lock_lost_lines"] == 0, "a run lost its lock under a slow renewal"
    assert tally.lock_lost == 0, f"a run was stopped as lock_lost under a slow renewal: {tally.problems}"
