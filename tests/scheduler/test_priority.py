"""Trigger priority (fires due in the same second go out higher priority first, as Quartz) and
jitter (each fire is dispatched at its nominal time plus a fixed offset)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import groupby

import redis

from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings
from woow_scheduler.triggers import jitter_offset

from .conftest import MakeTrigger, published


def test_same_second_fires_are_published_by_priority(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: Callable[..., WoowScheduler],
) -> None:
    created = datetime.now(UTC) - timedelta(seconds=6)
    made = {
        prio: make_trigger({"type": "cron", "expression": "*/2 * * * * ?", "priority": prio}, updated_at=created)
        for prio in (-5, 0, 7, 3)
    }
    reconciler.triggers([t.id for t in made.values()])
    make_scheduler().tick()
    by_id = {str(t.id): prio for prio, t in made.items()}
    fires = published(redis_client, settings)
    assert fires, "nothing was due"
    for _second, group in groupby(fires, key=lambda f: f["scheduled_for"]):
        assert [by_id[f["trigger_id"]] for f in group] == [7, 3, 0, -5]


def test_jitter_delays_each_fire_by_its_fixed_offset(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: Callable[..., WoowScheduler],
) -> None:
    created = datetime.now(UTC) - timedelta(seconds=5)
    t = make_trigger({"type": "cron", "expression": "* * * * * ?", "jitter": 30}, updated_at=created)
    reconciler.triggers([t.id])
    make_scheduler().tick()
    raw = redis_client.lrange(Keys(settings.key_prefix).broker_queue(settings.queue), 0, -1)
    assert raw
    for item in raw:
        msg = json.loads(item)
        kwargs = json.loads(base64.b64decode(msg["body"]))[1]
        nominal = datetime.fromisoformat(kwargs["scheduled_for"])
        assert nominal.microsecond == 0  # scheduled_for stays the nominal time (the idempotency key)
        eta = datetime.fromisoformat(msg["headers"]["eta"])
        assert eta == nominal + jitter_offset(str(t.id), nominal, 30)
        # the payload carries the offset (ms) so the worker records it for history
        assert kwargs["jitter_ms"] == jitter_offset(str(t.id), nominal, 30) // timedelta(milliseconds=1)
        assert kwargs["version"] == 2
        assert nominal <= eta < nominal + timedelta(seconds=30)
