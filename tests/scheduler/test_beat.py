"""The beat scheduler in-process, against real Redis and PostgreSQL (publishing to the real broker)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from woow_scheduler.db import Database, SchedulerInstance, Trigger
from woow_scheduler.enums import TriggerState
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.bookkeeping import drain_fired
from woow_scheduler.scheduler.codec import decode_meta
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings

from .conftest import MakeTrigger, published

MakeScheduler = Callable[..., WoowScheduler]
START = "2026-01-01T00:00:00+00:00"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_fires_carry_nominal_time_shadow_and_ids(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    workflow: Any,
) -> None:
    created = datetime.now(UTC) - timedelta(seconds=7)
    t = make_trigger({"type": "cron", "expression": "*/2 * * * * ?"}, updated_at=created)
    reconciler.triggers([t.id])
    sch = make_scheduler()
    sch.tick()
    fires = published(redis_client, settings)
    anchor = created.replace(microsecond=0)
    expected = [anchor + timedelta(seconds=i) for i in range(1, 9) if (anchor + timedelta(seconds=i)).second % 2 == 0]
    expected = [e for e in expected if e <= datetime.now(UTC)]
    assert [ts(f["scheduled_for"]) for f in fires] == expected
    assert all(f["shadow"] == f"workflow:{workflow.name}" for f in fires)
    assert fires[0]["task"] == "woow.execute_workflow"
    assert {f["trigger_id"] for f in fires} == {str(t.id)}
    assert {f["workflow_id"] for f in fires} == {str(workflow.id)}
    assert {f["user_id"] for f in fires} == {"user-1"}
    assert {f["version"] for f in fires} == {1}
    sch.tick()  # nothing new is due within the same second pair
    again = published(redis_client, settings)
    assert len({f["scheduled_for"] for f in again}) == len(again)  # never the same fire twice
    keys = Keys(settings.key_prefix)
    last, count = decode_meta(redis_client.hget(keys.redbeat_entry(t.id), "meta"))
    assert last == ts(again[-1]["scheduled_for"]) and count == len(again)
    score = redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(t.id))
    assert score == (last + timedelta(seconds=2)).timestamp()


def test_new_trigger_never_fires_at_creation(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    make_trigger({"type": "interval", "every": 3600, "start_at": START})
    make_trigger({"type": "cron", "expression": "0 0 0 * * ?"})
    make_trigger({"type": "once", "run_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    reconciler.full()
    make_scheduler().tick()
    assert published(redis_client, settings) == []


@pytest.mark.parametrize("policy", ["fire_once_now", "skip", "fire_all"])
def test_misfire_policies_after_downtime(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    policy: str,
) -> None:
    """Down for 5 minutes, every 10 s, threshold 60 s (the engine's missed_fires decides)."""
    now = datetime.now(UTC).replace(microsecond=0)
    prev = now - timedelta(seconds=300)
    prev -= timedelta(seconds=prev.second % 10)
    spec = {"type": "interval", "every": 10, "start_at": START, "misfire_policy": policy, "max_catchup": 10}
    t = make_trigger(spec, previous_fire_time=prev, updated_at=now - timedelta(hours=1))
    reconciler.full()  # as after a Redis loss: rebuilt from previous_fire_time
    sch = make_scheduler()
    sch.tick()
    fired_at = datetime.now(UTC)
    fires = [ts(f["scheduled_for"]) for f in published(redis_client, settings)]
    assert all(f.second % 10 == 0 and prev < f <= fired_at for f in fires)
    assert fires == sorted(set(fires))
    if policy == "fire_once_now":
        assert len(fires) == 1 and fired_at - fires[0] < timedelta(seconds=11)  # the most recent missed fire
    elif policy == "skip":  # nothing older than the threshold; the on-time ones still fire
        assert 5 <= len(fires) <= 7 and all(fired_at - f <= timedelta(seconds=61) for f in fires)
    else:  # fire_all, bounded by max_catchup: the 10 most recent
        assert len(fires) == 10 and fired_at - fires[-1] < timedelta(seconds=11)
    keys = Keys(settings.key_prefix)
    score = redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(t.id))
    assert score is not None and score > now.timestamp()  # next regular fire; no further burst
    n = len(fires)
    sch.tick()
    assert len(published(redis_client, settings)) == n


def test_standby_never_fires_and_takes_over_after_a_clean_stop(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    t = make_trigger(
        {"type": "interval", "every": 1, "start_at": START}, updated_at=datetime.now(UTC) - timedelta(seconds=3)
    )
    reconciler.triggers([t.id])
    active, standby = make_scheduler(), make_scheduler()
    active.tick()
    n = len(published(redis_client, settings))
    assert n >= 3 and active.is_leader
    time.sleep(1.1)
    assert standby.tick() == pytest.approx(standby.max_interval)
    assert not standby.is_leader
    assert len(published(redis_client, settings)) == n
    active.close()
    standby.tick()
    assert standby.is_leader
    fires = [f["scheduled_for"] for f in published(redis_client, settings)]
    assert len(fires) > n and len(fires) == len(set(fires))  # the standby continued where the active stopped


def test_lock_is_kept_through_a_burst_longer_than_its_lifetime(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=2)
    ids = [make_trigger({"type": "interval", "every": 3600, "start_at": START}, updated_at=past).id for _ in range(60)]
    reconciler.triggers(ids)
    keys = Keys(settings.key_prefix)
    due = datetime.now(UTC).timestamp() - 1
    redis_client.zadd(keys.redbeat_schedule, {keys.redbeat_entry(i): due for i in ids})
    for i in ids:  # force each to be due: a position one hour back
        redis_client.hset(keys.redbeat_entry(i), "meta", "")
    sch = make_scheduler(beat_lock_timeout=2.0, beat_dispatch_chunk=5)
    real = sch._process_chunk

    def slow(client: Any, chunk: list[str], *rest: Any) -> int:
        time.sleep(0.4)  # 12 chunks x 0.4 s = 4.8 s, more than twice the lock's lifetime
        return real(client, chunk, *rest)

    monkeypatch.setattr(sch, "_process_chunk", slow)
    sch.tick()
    assert sch.is_leader
    assert redis_client.pttl(keys.redbeat_lock) > 0
    assert all(
        (redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(i)) or 0) > datetime.now(UTC).timestamp()
        for i in ids
    )


def test_fired_script_never_resurrects_a_deleted_entry_and_flags_a_changed_one(
    settings: Settings,
    redis_client: redis.Redis,
    make_scheduler: MakeScheduler,
) -> None:
    sch = make_scheduler()
    script = sch._fired_script(redis_client)
    keys = Keys(settings.key_prefix)
    gone = keys.redbeat_entry(uuid.uuid4())
    args = ["0" * 40, '{"last_run_at": null}', 123, '{"t":"x"}', 1000]
    assert script(keys=[gone, keys.redbeat_schedule, keys.fired], args=args) == 0
    assert redis_client.exists(gone, keys.fired) == 0 and redis_client.zcard(keys.redbeat_schedule) == 0
    changed = keys.redbeat_entry(uuid.uuid4())
    redis_client.hset(changed, "definition", "{}")
    assert script(keys=[changed, keys.redbeat_schedule, keys.fired], args=args) == 1
    assert redis_client.zscore(keys.redbeat_schedule, changed) == 0  # re-evaluated by the next pass


def test_bookkeeping_updates_triggers_and_completes_a_once_trigger(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    once = make_trigger(
        {"type": "once", "run_at": (now - timedelta(seconds=1)).isoformat()}, updated_at=now - timedelta(seconds=5)
    )
    rep = make_trigger(
        {"type": "interval", "every": 1, "start_at": START, "repeat_count": 0}, updated_at=now - timedelta(seconds=5)
    )
    every = make_trigger({"type": "interval", "every": 1, "start_at": START}, updated_at=now - timedelta(seconds=3))
    reconciler.full()
    make_scheduler().tick()
    fires = published(redis_client, settings)
    keys = Keys(settings.key_prefix)
    records = redis_client.xrange(keys.fired)
    result = drain_fired(settings, db, redis_client)
    assert result.completed == 1  # the once trigger; repeat_count=0 on a 2026 start has no fire left
    with db.session() as s:
        o = s.get(Trigger, once.id)
        e = s.get(Trigger, every.id)
        r = s.get(Trigger, rep.id)
        assert o is not None and e is not None and r is not None
        assert (
            o.state == TriggerState.COMPLETE
            and o.fire_count == 1
            and o.previous_fire_time == now - timedelta(seconds=1)
        )
        assert o.next_fire_time is None
        n_every = sum(1 for f in fires if f["trigger_id"] == str(every.id))
        assert e.fire_count == n_every >= 3 and e.state == TriggerState.NORMAL
        assert e.next_fire_time == e.previous_fire_time + timedelta(seconds=1)  # type: ignore[operator]
        assert r.fire_count == 0
    assert redis_client.exists(keys.redbeat_entry(once.id)) == 0
    assert redis_client.xlen(keys.fired) == 0
    for _rid, fields in records:  # a replay (crash before XDEL) counts nothing twice
        redis_client.xadd(keys.fired, fields)
    drain_fired(settings, db, redis_client)
    with db.session() as s:
        e2 = s.get(Trigger, every.id)
        assert e2 is not None and e2.fire_count == n_every


def test_maintenance_thread_heartbeats_bookkeeps_and_reconciles(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    make_scheduler: MakeScheduler,
) -> None:
    t = make_trigger(
        {"type": "interval", "every": 1, "start_at": START}, updated_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    sch = make_scheduler(WoowScheduler, bookkeeping_interval=0.2, reconcile_interval=0.5)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # no sync before: beat's own start-up full reconcile adds the entry
        time.sleep(sch.tick())
    keys = Keys(settings.key_prefix)
    assert published(redis_client, settings), "the full reconcile at start did not add the entry"
    with db.session() as s:
        row = s.get(SchedulerInstance, sch.instance_id)
        assert row is not None and row.is_leader and row.kind == "beat"
        trig = s.get(Trigger, t.id)
        assert trig is not None and trig.fire_count >= 1 and trig.previous_fire_time is not None
    state = redis_client.hgetall(keys.beat_state)
    assert state["instance"] == sch.instance_id
    with db.session() as s:  # a pause is picked up by the incremental reconcile
        trig = s.get(Trigger, t.id)
        assert trig is not None
        trig.state = TriggerState.PAUSED
        trig.version += 1
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and redis_client.exists(keys.redbeat_entry(t.id)):
        time.sleep(sch.tick())
    assert not redis_client.exists(keys.redbeat_entry(t.id))
    sch.close()
    with db.session() as s:
        assert s.get(SchedulerInstance, sch.instance_id) is None


def test_entries_lost_while_running_come_back_without_duplicates(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    make_scheduler: MakeScheduler,
) -> None:
    t = make_trigger({"type": "interval", "every": 1, "start_at": START})
    sch = make_scheduler(WoowScheduler, bookkeeping_interval=0.2, reconcile_interval=0.5)
    keys = Keys(settings.key_prefix)

    def run(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(sch.tick())

    run(2.5)
    assert redis_client.exists(keys.redbeat_entry(t.id))
    for key in redis_client.scan_iter(match=f"{keys.redbeat_prefix}*"):
        if key != keys.redbeat_lock:
            redis_client.delete(key)
    run(3.0)  # the incremental pass sees fewer entries than active triggers and runs a full one
    assert redis_client.exists(keys.redbeat_entry(t.id))
    fires = [f["scheduled_for"] for f in published(redis_client, settings)]
    assert len(fires) == len(set(fires)) >= 4  # nothing fired twice after the rebuild
    from woow_scheduler.scheduler.beat import beat_status

    status = beat_status(settings, redis_client, db)
    assert status["active"]["instance"] == sch.instance_id
    assert status["lock_held"] and status["entries"] == 1
    assert status["last_tick_age_s"] is not None and status["last_tick_age_s"] < 2
    assert [i["id"] for i in status["instances"]] == [sch.instance_id]


def test_a_beat_whose_lock_was_taken_over_stops_firing(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    t = make_trigger({"type": "interval", "every": 1, "start_at": START})
    reconciler.triggers([t.id])
    sch = make_scheduler(beat_lock_timeout=2.0)
    sch.tick()
    assert sch.is_leader
    keys = Keys(settings.key_prefix)
    redis_client.set(keys.redbeat_lock, "another-beat", px=5000)  # as after a network blip (#127)
    n = len(published(redis_client, settings))
    time.sleep(1.1)
    assert sch.tick() == pytest.approx(sch.max_interval)  # no crash (#230), no fire
    assert not sch.is_leader
    assert len(published(redis_client, settings)) == n
    assert redis_client.get(keys.redbeat_lock) == "another-beat"


def test_static_celery_entries_still_work_beside_triggers(settings: Settings, redis_client: redis.Redis) -> None:
    from celery.schedules import schedule as interval

    from woow_scheduler.messaging.app import create_app

    from .conftest import QuietScheduler

    app = create_app(settings)
    app.conf.beat_schedule = {"ping": {"task": "woow.ping", "schedule": interval(1.0)}}
    sch = QuietScheduler(app)
    try:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            time.sleep(sch.tick())
    finally:
        sch.close()
    raw = redis_client.lrange(f"{settings.key_prefix}broker:celery", 0, -1) + redis_client.lrange(
        f"{settings.key_prefix}broker:{settings.queue}", 0, -1
    )
    assert any('"woow.ping"' in m for m in raw)


def test_fraction_of_a_second_start_at_publishes_each_fire_once(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    """Issue 13 item 6: an interval every 3 s whose stored start_at is at .500 (a row written
    before start_at was floored at validation) once made every pass re-publish the same fire
    (179 messages for 3 fires in 10 s).  Read back, the start is floored: one message per fire."""
    base = datetime.now(UTC).replace(microsecond=0)
    start = base + timedelta(seconds=1, milliseconds=500)
    t = make_trigger(
        {"type": "interval", "every": 3, "start_at": start.isoformat()}, updated_at=base - timedelta(seconds=1)
    )
    reconciler.triggers([t.id])
    sch = make_scheduler()
    until = base + timedelta(seconds=4, milliseconds=400)
    while datetime.now(UTC) < until:
        sch.tick()
        time.sleep(0.1)
    sent = [ts(f["scheduled_for"]) for f in published(redis_client, settings)]
    assert sent == [base + timedelta(seconds=1), base + timedelta(seconds=4)]


def test_a_beat_that_loses_its_lock_inside_a_long_chunk_stops_publishing(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13 item 8: the lock is checked by elapsed time while one chunk publishes, not only
    between chunks.  One trigger with 40 fires to catch up (a single chunk); publishing is slow and
    another beat takes the lock meanwhile: this beat stops within a quarter of the lock's lifetime,
    and the entry's position stays at its last published fire, so the new leader sends the rest."""
    now = datetime.now(UTC).replace(microsecond=0)
    spec = {"type": "interval", "every": 1, "start_at": START, "misfire_policy": "fire_all", "max_catchup": 40}
    t = make_trigger(spec, previous_fire_time=now - timedelta(seconds=41), updated_at=now - timedelta(hours=1))
    reconciler.triggers([t.id])
    keys = Keys(settings.key_prefix)
    sch = make_scheduler(beat_lock_timeout=1.0)
    real = sch._publish
    calls: list[datetime] = []

    def slow(definition: dict[str, Any], fire: datetime, producer: Any = None) -> None:
        calls.append(fire)
        if len(calls) == 5:  # the lock expired meanwhile and another beat took it
            redis_client.set(keys.redbeat_lock, "another-beat", px=5000)
        time.sleep(0.05)
        real(definition, fire, producer)

    monkeypatch.setattr(sch, "_publish", slow)
    sch.tick()
    sent = [ts(f["scheduled_for"]) for f in published(redis_client, settings)]
    assert 5 <= len(sent) <= 5 + 6  # noticed within lock_timeout / 4 = 0.25 s of 0.05 s publishes
    assert not sch.is_leader
    last, _ = decode_meta(redis_client.hget(keys.redbeat_entry(t.id), "meta"))
    assert last == sent[-1]  # the rest is left to the new leader, none skipped
