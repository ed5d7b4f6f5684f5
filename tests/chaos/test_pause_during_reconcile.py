"""Scenario 12 (issue 13's scenario 11): triggers are paused and deleted while a full reconcile
runs, between the moment the pass read their rows and the moment it writes their entries.

The pass (an operator's ``woow sync --full`` beside a running beat, here in the test process with a
hook between its read and its write) must not re-create the entries the pause's and the delete's
write-through removed: no fire of a paused trigger is published after the pause (not even one a
worker would then record ``skipped``), a deleted trigger's entry stays gone, and the other
triggers fire as usual (0 lost, 0 duplicated).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.chaos.harness import ChaosEnv, Size, sizes, utcnow
from woow_scheduler.db import Execution
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.service import Service


class RacingReconciler(Reconciler):
    """A reconciler that pauses one trigger and deletes another once its first batch of rows was read."""

    race: tuple[Service, Any, Any, dict[Any, Any], list[Any]] | None = None

    def _sync_rows(self, rows: Any, report: Any, existing: Any) -> list[str]:
        if self.race is not None:
            svc, paused, gone, paused_at, deleted = self.race
            self.race = None
            svc.pause_trigger(str(paused))
            paused_at[paused] = utcnow()
            svc.delete_trigger(str(gone))
            deleted.append(gone)
        return super()._sync_rows(rows, report, existing)


SIZES = sizes(
    Size("full", triggers=30, window=45, faults=3),
    Size("reduced", triggers=9, window=15, faults=1),
)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", SIZES)
def test_pause_and_delete_during_a_full_reconcile(chaos_env: ChaosEnv, size: Size) -> None:
    env = chaos_env
    ids = env.load(size.triggers, min_period=1, max_period=2, step_seconds=0.05)
    svc = Service(env.db, env.settings)
    beat = env.beat("a")
    env.worker("w1")
    env.worker("w2")
    time.sleep(2)
    t0 = utcnow()
    deadline = time.monotonic() + size.window
    # each fault pauses one trigger and deletes another of a fresh third of the load
    victims = [(ids[3 * k], ids[3 * k + 1]) for k in range(size.faults)]
    paused_at: dict[Any, Any] = {}
    deleted: list[Any] = []
    client = env.redis()
    try:
        for paused, gone in victims:
            reconciler = RacingReconciler(env.settings, env.db, client)
            reconciler.race = (svc, paused, gone, paused_at, deleted)
            reconciler.full()
            # right after the pass, before any incremental pass of beat could repair it
            for tid in (paused, gone):
                key = env.keys.redbeat_entry(tid)
                assert client.zscore(env.keys.redbeat_schedule, key) is None, f"entry of {tid} re-created"
                assert not client.exists(key), f"entry of {tid} re-created"
            time.sleep(max(0.0, min(size.window / size.faults, deadline - time.monotonic())))
    finally:
        client.close()
    time.sleep(max(0.0, deadline - time.monotonic()))
    t1 = utcnow()
    beat.stop()
    # the victims are checked below; every other trigger is counted as in every scenario
    env.trigger_ids = [t for t in env.trigger_ids if t not in paused_at and t not in deleted]
    settled = env.settle(t0, t1)
    tally = env.classify(t0, t1, scenario="12 pause during reconcile", size=size.name)
    tally.extra.update(paused=len(paused_at), deleted=len(deleted), settle_s=round(settled, 1))
    with env.db.session() as s:
        late = {
            str(tid): [
                str(when)
                for (when,) in s.execute(
                    select(Execution.scheduled_for).where(
                        Execution.trigger_id == tid, Execution.scheduled_for > at + timedelta(seconds=1)
                    )
                )
            ]
            for tid, at in paused_at.items()
        }
    tally.extra["fired_after_pause"] = sum(len(v) for v in late.values())
    tally.publish()
    tally.check()
    assert not any(late.values()), f"fires of paused triggers published after the pause: {late}"
