"""Scenario 3: Redis is killed and restarted EMPTY (no persistence).

Every RedBeat entry, the beat lock, the broker queue and the workflow locks are gone.  Beat
re-takes its lock, the reconciler rebuilds every entry from PostgreSQL with its last fire time
(``triggers.previous_fire_time``), so fires resume on schedule: no lost schedule, and no catch-up
burst beyond the misfire policy.  Fires the rebuilt entries dispatch again (PostgreSQL's
bookkeeping lags beat by up to a second) meet their execution rows and are not run twice.  A
group of triggers firing together makes sure Redis dies with fires still waiting in the broker
queue: beat had published (and PostgreSQL had recorded) them, but no worker had started them; the
rebuild resumes each entry after its last fire that has an execution row, so they fire again.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.chaos.accounting import Fault
from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.scheduler.codec import decode_meta

BURST = 24
SIZES = sizes(
    Size("full", triggers=60, window=60, outage=5, faults=2),
    Size("reduced", triggers=15, window=20, outage=3, faults=1),
)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_redis_restarted_empty(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    ids = env.load(size.triggers, min_period=3, max_period=8, step_seconds=0.1, mixed_misfire=True)
    # a group firing together every 5 s: Redis dies while their fires wait in the broker queue
    ids += env.load(
        BURST, min_period=5, max_period=5, kinds=("cron",), step_seconds=0.3, mixed_misfire=True,
        overrides={"expression": "0/5 * * * * ?"},
    )
    beat = env.beat("a")
    env.worker("w1")
    env.worker("w2")
    time.sleep(4)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    faults: list[Fault] = []
    recoveries: list[float] = []
    rebuilt_with_meta = 0
    queued: list[int] = []  # fires waiting in the broker queue when Redis died
    for k in range(size.faults):
        time.sleep(max(1.0, (deadline - time.monotonic()) / (size.faults - k + 1) - size.outage))
        time.sleep(5.3 - time.time() % 5)  # 0.3 s after the burst group fired
        client = env.redis()
        queued.append(int(client.llen(f"{env.settings.key_prefix}broker:{env.settings.queue}")))
        client.close()
        env.redis_server.kill()
        down_at = utcnow()
        time.sleep(size.outage)
        env.redis_server.start()
        up_mono = time.monotonic()
        client = env.redis()
        try:
            while client.zcard(env.keys.redbeat_schedule) < len(ids):
                assert time.monotonic() - up_mono < 30, "the schedule was not rebuilt from PostgreSQL"
                time.sleep(0.05)
            recoveries.append(time.monotonic() - up_mono)
            metas = [client.hget(env.keys.redbeat_entry(t), "meta") for t in ids]
            rebuilt_with_meta = sum(1 for m in metas if m and decode_meta(m)[0] is not None)
        finally:
            client.close()
        faults.append(Fault(f"redis restart {k}", down_at, utcnow()))
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    time.sleep(1.5)
    beat.stop()
    # the fault lasts until beat fires again: the first dispatch after the restart
    rows = env.rows()
    faults = [
        Fault(
            f.label,
            f.start,
            min((r.enqueued_at for r in rows if r.enqueued_at and r.enqueued_at > f.end - timedelta(seconds=0.5)),
                default=f.end),
        )
        for f in faults
    ]
    settled = env.settle(t0, t1, faults)
    tally = env.classify(t0, t1, scenario="3 Redis restarted empty", size=size.name, faults=faults)
    tally.recovery_s = round(max(recoveries), 2)
    worker_logs = "".join(p.log() for p in env.procs if p.kind == "worker")
    tally.extra.update(
        outage_s=size.outage,
        queued_at_kill=queued,
        schedule_rebuilt_s=[round(r, 2) for r in recoveries],
        entries_rebuilt_with_last_fire=rebuilt_with_meta,
        fire_gap_s=[round((f.end - f.start).total_seconds(), 2) for f in faults],
        duplicate_deliveries_ignored=worker_logs.count("duplicate delivery ignored"),
        settle_s=round(settled, 1),
    )
    tally.publish()
    tally.check()
    assert rebuilt_with_meta == len(ids), "entries rebuilt without their last fire time"
    assert min(queued) > 0, "Redis never died with fires waiting in the broker queue"
