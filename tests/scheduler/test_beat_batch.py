"""Beat publishes a chunk's fires as one kombu publish batch: what the lock check means for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings

from .conftest import MakeTrigger, published
from .test_beat import MakeScheduler


def test_a_lock_lost_in_the_middle_of_a_batch_sends_what_was_buffered_and_the_new_leader_the_rest(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = Keys(settings.key_prefix)
    sch = make_scheduler(beat_lock_timeout=2.0)
    sch.tick()  # takes the lock; nothing is due yet
    assert sch.is_leader
    created = datetime.now(UTC) - timedelta(seconds=4)  # every second since: a few fires each are due
    ids = [make_trigger({"type": "cron", "expression": "* * * * * ?"}, updated_at=created).id for _ in range(6)]
    reconciler.triggers(ids)
    now = datetime.now(UTC).timestamp()
    scores = {i: redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(i)) for i in ids}
    assert all(s is not None and s <= now for s in scores.values())

    real = sch._publish_one
    calls = 0

    def taken_over_after_three(job: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # another beat took the lock (as after a network blip) while we were publishing
            redis_client.set(keys.redbeat_lock, "another-beat", px=5000)
            assert sch._beat_lock is not None
            sch._beat_lock._last_ok -= 10  # our last extension is old: the next check asks Redis
        return real(job, **kwargs)

    monkeypatch.setattr(sch, "_publish_one", taken_over_after_three)
    sch.tick()
    assert calls == 3 and not sch.is_leader
    assert len(published(redis_client, settings)) == 3  # buffered while the lock was held: flushed

    redis_client.delete(keys.redbeat_lock)  # the other beat stops cleanly; a new one takes over
    other = make_scheduler(beat_lock_timeout=2.0)
    other.tick()
    fires = published(redis_client, settings)
    assert {f["trigger_id"] for f in fires} == {str(i) for i in ids}
    assert len({(f["trigger_id"], f["scheduled_for"]) for f in fires}) == len(fires) > len(ids)  # each fire once
