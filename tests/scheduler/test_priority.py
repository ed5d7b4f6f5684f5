"""Trigger priority: fires due in the same second go out higher priority first (Quartz)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import groupby

import redis

from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings

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
