"""Scenario 11: fires vanish from the broker after beat published them.

Simulates kombu's pop/unacked window (a worker killed between ``BRPOP`` and recording the message
unacked loses it for good) and a broker that lost its data: while no worker consumes, beat
publishes, and the test deletes some of the waiting messages from the queue.  Beat's fire journal
and its sweeper must publish each lost fire again once ``visibility_timeout`` + the grace has
passed, and every fire must still run exactly once.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.db import Execution

SIZES = sizes(
    Size("full", triggers=12, window=45, faults=3),
    Size("reduced", triggers=5, window=25, faults=1),
)
GRACE = 2.0


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_vanished_messages_are_published_again(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    settings = env.make_settings(fire_journal_grace=GRACE)
    env.load(size.triggers, min_period=2, max_period=4, step_seconds=0.2)
    beat = env.beat("a", settings=settings)
    time.sleep(2)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    queue = env.keys.broker_queue(settings.queue)
    client = env.redis()
    removed: list[tuple[str, str]] = []
    removed_at: dict[tuple[str, str], datetime] = {}
    gap = size.window / (size.faults + 1)
    try:
        for k in range(size.faults):
            # no worker is consuming: let fires pile up in the queue, then lose half of them
            time.sleep(gap / 2)
            waiting = client.lrange(queue, 0, -1)
            for raw in waiting[::2]:
                if client.lrem(queue, 1, raw):
                    _args, kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
                    removed.append((kwargs["trigger_id"], kwargs["scheduled_for"]))
                    removed_at[removed[-1]] = utcnow()
            worker = env.worker(f"w{k}")
            time.sleep(gap / 2)
            worker.stop()
        assert removed, "no message was waiting to be lost"
        env.worker("final")
        time.sleep(max(0.0, deadline - time.monotonic()))
        t1 = utcnow()
        time.sleep(1.5)
        # the lost fires come back after visibility_timeout + grace + one sweep
        settled = env.settle(t0, t1, timeout=settings.visibility_timeout + GRACE + 60)
        beat.stop()
    finally:
        client.close()
    tally = env.classify(t0, t1, scenario="11 vanished message", size=size.name)
    logs = "".join(p.log() for p in env.procs if p.kind == "beat")
    with env.db.session() as s:
        rows = s.execute(select(Execution.trigger_id, Execution.scheduled_for, Execution.created_at)).all()
    arrived = {(str(r.trigger_id), r.scheduled_for.isoformat()): r.created_at for r in rows if r.scheduled_for}
    waits = [(arrived[f] - at).total_seconds() for f, at in removed_at.items() if arrived.get(f)]
    # every lost fire came back and was claimed (run, or skipped by its forbid policy: the tally
    # below counts each fire's outcome)
    assert len(waits) == len(removed_at), "a lost fire never came back"
    tally.recovery_s = round(max(waits), 2)  # removal -> the re-published fire was claimed
    tally.extra.update(
        removed=len(removed), republished=logs.count("published again"), settle_s=round(settled, 1)
    )
    tally.publish()
    tally.check()
    assert tally.extra["republished"] >= len({r for r in removed if r[1] > t0.isoformat()})
