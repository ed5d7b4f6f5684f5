"""Scenario 6: soak -- many mixed triggers (cron, interval, once; six time zones) on 2 workers.

Measures fire lateness (dispatch = enqueued_at, start = started_at, against scheduled_for),
executions per second and the resident memory of the beat and worker process trees (sampled
after a warm-up and at the end; it must stay flat), and counts every fire like the other
scenarios: zero duplicates, zero overlaps of forbid workflows, zero unexplained losses.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.chaos.harness import ChaosEnv, Size, sizes, tree_rss, utcnow

SIZES = sizes(
    Size("full", triggers=2000, window=600, min_period=30, max_period=300, warmup=60),
    Size("reduced", triggers=200, window=30, min_period=5, max_period=30, warmup=8),
)
MIB = 1024 * 1024
#: allowed RSS growth per process tree between the warm-up sample and the end
MEMORY_GROWTH_BOUND_MIB = 25.0
#: p99 of started_at - scheduled_for.  It bounds dispatch lateness from above (a fire cannot start
#: before it was published); enqueued_at cannot: a fire beat prepared ahead carries its
#: scheduled_for as enqueued_at (its body is encoded before its second starts), so the dispatch
#: figures of the rows read 0 for those and are kept only for fires published at the due instant
START_P99_BOUND_S = 3.0


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("size", SIZES)
def test_soak(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    t_load = time.monotonic()
    env.load(
        size.triggers,
        workflows=max(1, size.triggers // 10),
        min_period=size.min_period,
        max_period=size.max_period,
        kinds=("cron", "interval", "cron", "interval", "once"),
        step_seconds=(0.0, 0.3),
        allow_share=0.2,
        horizon=size.window,
    )
    load_s = time.monotonic() - t_load
    workers = [env.worker("w1"), env.worker("w2")]
    beat = env.beat("a")
    time.sleep(3)
    t0 = utcnow()
    start = time.monotonic()
    samples: list[tuple[float, int, int]] = []  # (seconds since t0, beat rss, workers rss)
    step = 10.0 if size.window >= 300 else 5.0
    while time.monotonic() - start < size.window:
        samples.append((time.monotonic() - start, tree_rss(beat), sum(tree_rss(w) for w in workers)))
        time.sleep(min(step, max(0.0, size.window - (time.monotonic() - start))))
    samples.append((time.monotonic() - start, tree_rss(beat), sum(tree_rss(w) for w in workers)))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    settled = env.settle(t0, t1, timeout=180)
    tally = env.classify(t0, t1, scenario="6 soak", size=size.name)
    rows = [r for r in env.rows() if r.scheduled_for and t0 < r.scheduled_for <= t1]
    from tests.chaos.accounting import lateness

    late = lateness(rows)
    done = [r for r in env.rows() if r.finished_at and t0 < r.finished_at <= t1 + timedelta(seconds=0)]
    warm = next(s for s in samples if s[0] >= size.warmup)
    end = samples[-1]
    beat_growth = (end[1] - warm[1]) / MIB
    workers_growth = (end[2] - warm[2]) / MIB
    tally.extra.update(
        window_s=size.window,
        triggers=size.triggers,
        load_setup_s=round(load_s, 1),
        executions_per_s=round(len(done) / size.window, 2),
        **late,
        beat_rss_mib=[round(warm[1] / MIB, 1), round(end[1] / MIB, 1)],
        workers_rss_mib=[round(warm[2] / MIB, 1), round(end[2] / MIB, 1)],
        beat_growth_mib=round(beat_growth, 1),
        workers_growth_mib=round(workers_growth, 1),
        settle_s=round(settled, 1),
    )
    tally.publish()
    tally.check()
    assert tally.overlaps == 0
    assert beat_growth < MEMORY_GROWTH_BOUND_MIB, f"beat RSS grew {beat_growth:.1f} MiB"
    assert workers_growth < MEMORY_GROWTH_BOUND_MIB, f"worker RSS grew {workers_growth:.1f} MiB"
    assert "start_p99_s" in late, f"no fire succeeded in the window: nothing was measured ({late})"
    assert late["start_p99_s"] <= START_P99_BOUND_S, late
