"""PostgreSQL → RedBeat sync against real PostgreSQL and Redis."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import insert, select, update

from woow_scheduler.db import Database, Trigger
from woow_scheduler.enums import TriggerState
from woow_scheduler.errors import StoreUnavailable
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.codec import decode_meta, loads
from woow_scheduler.scheduler.schedule import WoowTriggerSchedule
from woow_scheduler.scheduler.sync import Reconciler, RedBeatMirror, full_sync
from woow_scheduler.settings import Settings, load_settings

from .conftest import MakeTrigger, update_trigger

EVERY_2S = {"type": "cron", "expression": "*/2 * * * * ?"}


def every(seconds: int, **extra: Any) -> dict[str, Any]:
    return {"type": "interval", "every": seconds, "start_at": "2026-01-01T00:00:00+00:00", **extra}


def entry(client: redis.Redis, keys: Keys, trigger_id: uuid.UUID) -> tuple[dict[str, Any] | None, Any, float | None]:
    key = keys.redbeat_entry(trigger_id)
    definition, meta = client.hmget(key, "definition", "meta")
    return (loads(definition) if definition else None), decode_meta(meta), client.zscore(keys.redbeat_schedule, key)


def test_add_writes_one_entry_keyed_by_trigger_id(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger, workflow: Any
) -> None:
    t = make_trigger(every(3600))
    RedBeatMirror(settings, db, redis_client).triggers_changed([t.id])
    keys = Keys(settings.key_prefix)
    definition, (last, _count), score = entry(redis_client, keys, t.id)
    assert definition is not None
    assert definition["name"] == str(t.id)
    assert definition["task"] == "woow.execute_workflow"
    assert definition["kwargs"] == {"workflow_id": str(workflow.id), "trigger_id": str(t.id), "user_id": "user-1"}
    assert definition["options"] == {"shadow": f"workflow:{workflow.name}", "queue": settings.queue}
    assert isinstance(definition["schedule"], WoowTriggerSchedule)
    assert last is None  # never fired: position = the anchor (creation), never a spurious fire
    now = datetime.now(UTC)
    assert score is not None and now.timestamp() < score <= now.timestamp() + 3600
    assert score % 3600 == 0  # anchored on start_at, whole hours


def test_update_keeps_last_fire_and_pause_resume_delete(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger
) -> None:
    keys = Keys(settings.key_prefix)
    prev = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    t = make_trigger(every(3600), previous_fire_time=prev)
    mirror = RedBeatMirror(settings, db, redis_client)
    mirror.triggers_changed([t.id])
    assert entry(redis_client, keys, t.id)[1][0] == prev

    update_trigger(db, t.id, spec=every(60))
    mirror.triggers_changed([t.id])
    definition, (last, _), score = entry(redis_client, keys, t.id)
    assert definition is not None and definition["schedule"].spec.every == 60
    assert last == prev  # the update kept the entry's position
    assert score is not None and score > datetime.now(UTC).timestamp()  # no catch-up for the change

    update_trigger(db, t.id, state=TriggerState.PAUSED)
    mirror.triggers_changed([t.id])
    assert entry(redis_client, keys, t.id) == (None, (None, 0), None)

    update_trigger(db, t.id, state=TriggerState.NORMAL)
    mirror.triggers_changed([t.id])
    definition, _, score = entry(redis_client, keys, t.id)
    assert definition is not None
    assert score is not None and score > datetime.now(UTC).timestamp()  # resume: nothing fires for the pause

    with db.session() as s:
        s.delete(s.get(Trigger, t.id))
    mirror.triggers_changed([t.id])
    assert entry(redis_client, keys, t.id) == (None, (None, 0), None)
    assert redis_client.zcard(keys.redbeat_schedule) == 0


def test_full_reconcile_rebuilds_flushed_entries_with_their_last_fire(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger, reconciler: Reconciler
) -> None:
    keys = Keys(settings.key_prefix)
    old = datetime.now(UTC) - timedelta(days=2)
    prev = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=20)
    triggers = [make_trigger(every(60), previous_fire_time=prev, updated_at=old) for _ in range(5)]
    paused = make_trigger(every(60), state=TriggerState.PAUSED)
    first = reconciler.full()
    assert (first.added, first.unchanged, first.removed) == (5, 1, 0)
    before = {t.id: entry(redis_client, keys, t.id) for t in triggers}

    for key in redis_client.scan_iter(match=f"{settings.key_prefix}*"):
        redis_client.delete(key)
    report = reconciler.full()
    assert report.added == 5
    for t in triggers:
        definition, (last, _), score = entry(redis_client, keys, t.id)
        assert last == prev
        assert definition is not None
        assert score == before[t.id][2] == definition["schedule"].spec.next_fire_time(prev).timestamp()
    assert entry(redis_client, keys, paused.id)[0] is None

    again = reconciler.full()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 6)


def test_full_reconcile_never_moves_an_entry_back_and_removes_strays(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger, reconciler: Reconciler
) -> None:
    keys = Keys(settings.key_prefix)
    t = make_trigger(every(60), previous_fire_time=datetime.now(UTC) - timedelta(minutes=10))
    reconciler.full()
    later = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    redis_client.hset(keys.redbeat_entry(t.id), "meta", json.dumps({"last_run_at": None}))
    from woow_scheduler.scheduler.codec import encode_meta

    redis_client.hset(keys.redbeat_entry(t.id), "meta", encode_meta(later, 7))
    stray = keys.redbeat_entry(uuid.uuid4())
    redis_client.hset(stray, "definition", "{}")
    redis_client.zadd(keys.redbeat_schedule, {stray: 1})
    report = reconciler.full()
    assert report.removed == 1 and redis_client.exists(stray) == 0
    assert entry(redis_client, keys, t.id)[1] == (later, 7)


def test_exhausted_trigger_becomes_complete_without_entry(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger, reconciler: Reconciler
) -> None:
    keys = Keys(settings.key_prefix)
    run_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    t = make_trigger({"type": "once", "run_at": run_at.isoformat()}, previous_fire_time=run_at)
    report = reconciler.full()
    assert report.completed == 1
    assert entry(redis_client, keys, t.id)[0] is None
    with db.session() as s:
        assert s.get(Trigger, t.id).state == TriggerState.COMPLETE  # type: ignore[union-attr]


def test_two_concurrent_full_reconciles_leave_a_correct_state(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger
) -> None:
    keys = Keys(settings.key_prefix)
    prev = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    triggers = [make_trigger(every(30 + i), previous_fire_time=prev) for i in range(300)]
    gone = make_trigger(every(30), state=TriggerState.PAUSED)
    redis_client.hset(keys.redbeat_entry(gone.id), "definition", "{}")
    redis_client.zadd(keys.redbeat_schedule, {keys.redbeat_entry(gone.id): 1})
    small = load_settings(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        key_prefix=settings.key_prefix,
        sync_batch_size=37,
    )
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(
                Reconciler(small, db, redis.Redis.from_url(settings.redis_url, decode_responses=True)).full()
            )
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert redis_client.zcard(keys.redbeat_schedule) == 300
    for t in triggers:
        definition, (last, _), score = entry(redis_client, keys, t.id)
        assert definition is not None and last == prev
        assert score == definition["schedule"].next_fire_time(prev).timestamp()
    assert redis_client.exists(keys.redbeat_entry(gone.id)) == 0


def test_10k_triggers_reconcile_in_a_bounded_number_of_round_trips(
    settings: Settings, db: Database, redis_client: redis.Redis, workflow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "workflow_id": workflow.id,
            "name": f"t{i}",
            "type": "interval",
            "spec": every(60 + i % 600),
            "state": TriggerState.NORMAL,
            "version": 1,
            "fire_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(10_000)
    ]
    with db.session() as s:
        s.execute(insert(Trigger), rows)
    calls = {"n": 0}
    orig_cmd, orig_pipe = redis.Redis.execute_command, redis.client.Pipeline.execute

    def count_cmd(self: Any, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        return orig_cmd(self, *a, **k)

    def count_pipe(self: Any, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        return orig_pipe(self, *a, **k)

    monkeypatch.setattr(redis.Redis, "execute_command", count_cmd)
    monkeypatch.setattr(redis.client.Pipeline, "execute", count_pipe)
    progress: list[tuple[int, int]] = []
    report = full_sync(settings, progress=lambda d, t: progress.append((d, t)), db=db, client=redis_client)
    assert report.added == 10_000
    batches = 10_000 // settings.sync_batch_size
    assert calls["n"] <= 2 * batches + 5, calls
    assert progress[-1] == (10_000, 10_000)
    monkeypatch.undo()
    keys = Keys(settings.key_prefix)
    assert redis_client.zcard(keys.redbeat_schedule) == 10_000
    with db.session() as s:
        assert s.scalar(select(Trigger.id).limit(1)) is not None


def test_mirror_raises_store_unavailable_when_redis_is_down(
    settings: Settings, db: Database, make_trigger: MakeTrigger
) -> None:
    t = make_trigger(every(60))
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    with pytest.raises(StoreUnavailable):
        RedBeatMirror(settings, db, dead).triggers_changed([t.id])


def test_fast_definition_text_is_the_canonical_json() -> None:
    from woow_scheduler.scheduler.codec import definition_text, entry_definition
    from woow_scheduler.scheduler.sync import _canonical

    spec = {"type": "cron", "expression": "0 0 9 ? * MON-FRI", "timezone": "Europe/Berlin", "misfire_threshold": 60.0}
    options = {"queue": "woow", "shadow": 'workflow:naïve "quoted"', "time_limit": 65.0}
    common = {
        "trigger_id": uuid.uuid4(),
        "workflow_id": uuid.uuid4(),
        "anchor": datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=UTC),
        "version": 7,
    }
    for user in ("u-1", None, 'we"ird'):
        slow = _canonical(entry_definition(workflow_name="x", user_id=user, spec=spec, options=options, **common))
        fast = definition_text(user_id=user, options_json=_canonical(options), spec_json=_canonical(spec), **common)
        assert fast == slow


def test_sync_without_full_is_incremental_and_escalates_on_drift(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger
) -> None:
    from woow_scheduler.db import Workflow
    from woow_scheduler.scheduler.sync import sync

    old = datetime.now(UTC) - timedelta(days=1)
    a = make_trigger(every(60), updated_at=old)
    b = make_trigger(every(60))
    with db.session() as s:  # the workflow too is old: only b counts as changed
        s.execute(update(Workflow).values(updated_at=old))
    report = sync(settings, db=db, client=redis_client)
    assert report.mode == "full"  # b alone was changed; a's missing entry is drift, so a full pass
    assert report.added == 1 and report.unchanged == 1
    update_trigger(db, b.id, spec=every(120))
    report = sync(settings, db=db, client=redis_client)
    assert report.mode == "incremental" and report.updated == 1 and report.total == 1
    keys = Keys(settings.key_prefix)
    assert redis_client.exists(keys.redbeat_entry(a.id))


def test_rebuilt_entry_resumes_after_the_last_executed_fire(
    settings: Settings, db: Database, redis_client: redis.Redis, make_trigger: MakeTrigger, workflow: Any
) -> None:
    """Redis lost with fires in its broker queue: PostgreSQL recorded them fired, no worker ran them."""
    from woow_scheduler.db import Execution

    keys = Keys(settings.key_prefix)
    prev = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    ran = prev - timedelta(seconds=20)  # the last fire a worker started; the two after it were lost
    old = prev - timedelta(hours=1)
    lost = make_trigger(every(10), previous_fire_time=prev, updated_at=old)
    kept = make_trigger(every(10), previous_fire_time=prev, updated_at=old)
    never = make_trigger(every(10), previous_fire_time=prev, updated_at=old)  # no history (purged): unchanged
    with db.session() as s:
        s.execute(
            insert(Execution),
            [
                {"workflow_id": workflow.id, "trigger_id": lost.id, "scheduled_for": ran, "status": "succeeded"},
                {"workflow_id": workflow.id, "trigger_id": kept.id, "scheduled_for": prev, "status": "succeeded"},
            ],
        )
    Reconciler(settings, db, redis_client).full()
    assert entry(redis_client, keys, lost.id)[1][0] == ran
    assert entry(redis_client, keys, kept.id)[1][0] == prev
    assert entry(redis_client, keys, never.id)[1][0] == prev
    score = entry(redis_client, keys, lost.id)[2]
    assert score is not None and score <= (ran + timedelta(seconds=10)).timestamp()  # due again at once


def test_a_pause_or_delete_during_a_full_pass_is_not_undone(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = Keys(settings.key_prefix)
    paused, deleted, kept = make_trigger(every(60)), make_trigger(every(60)), make_trigger(every(60))
    reconciler = Reconciler(settings, db, redis_client)
    mirror = RedBeatMirror(settings, db, redis_client)
    real = reconciler._sync_rows

    def racing(rows: Any, report: Any, existing: Any) -> list[str]:
        # the rows were read; an operator pauses one trigger and deletes another before the write
        update_trigger(db, paused.id, state=TriggerState.PAUSED)
        with db.session() as s:
            s.delete(s.get(Trigger, deleted.id))
        mirror.triggers_changed([paused.id, deleted.id])  # their write-through removes the entries
        return real(rows, report, existing)

    monkeypatch.setattr(reconciler, "_sync_rows", racing)
    reconciler.full()
    assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(paused.id)) is None
    assert not redis_client.exists(keys.redbeat_entry(paused.id))
    assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(deleted.id)) is None
    assert not redis_client.exists(keys.redbeat_entry(deleted.id))
    assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(kept.id)) is not None


@pytest.mark.parametrize("kind", ["incremental", "triggers"])
def test_a_pause_or_delete_during_an_incremental_pass_is_not_undone(
    kind: str,
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13 item 7: the incremental pass (and a write-through of other changes), like the full
    one, read its rows before a pause and a delete committed (and their write-through removed the
    entries); its write must not bring them back."""
    keys = Keys(settings.key_prefix)
    since = datetime.now(UTC) - timedelta(seconds=5)
    paused, deleted, kept = make_trigger(every(60)), make_trigger(every(60)), make_trigger(every(60))
    reconciler = Reconciler(settings, db, redis_client)
    mirror = RedBeatMirror(settings, db, redis_client)
    real = reconciler._sync_rows

    def racing(rows: Any, report: Any, existing: Any) -> list[str]:
        update_trigger(db, paused.id, state=TriggerState.PAUSED)
        with db.session() as s:
            s.delete(s.get(Trigger, deleted.id))
        mirror.triggers_changed([paused.id, deleted.id])
        return real(rows, report, existing)

    monkeypatch.setattr(reconciler, "_sync_rows", racing)
    if kind == "incremental":
        report = reconciler.incremental(since)
    else:
        report = reconciler.triggers([paused.id, deleted.id, kept.id])
    assert report.total == 3
    for gone in (paused, deleted):
        assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(gone.id)) is None
        assert not redis_client.exists(keys.redbeat_entry(gone.id))
    assert redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(kept.id)) is not None
