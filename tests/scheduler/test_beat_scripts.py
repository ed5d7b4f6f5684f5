"""Beat's Lua scripts in its pipelines: sent as bare ``EVALSHA`` (no ``SCRIPT EXISTS`` round trip in
front of the due instant's check), and loaded again when the server has lost them (restarted, or
``SCRIPT FLUSH``) without losing, doubling or advancing a fire.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from woow_scheduler.db import Database
from woow_scheduler.keys import Keys
from woow_scheduler.lua import lua_source
from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.beat import WoowSchedulerEntry
from woow_scheduler.scheduler.codec import decode_meta
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings

from .conftest import MakeTrigger, published, update_trigger
from .test_beat import MakeScheduler
from .test_prepared import _at, _sleep_into, _tick_until_prepared

EVERY_SECOND = {"type": "cron", "expression": "* * * * * ?"}


@contextmanager
def monitored(redis_url: str) -> Iterator[list[dict[str, Any]]]:
    """Every command the Redis server runs while inside (``MONITOR``), as redis-py parses them."""
    seen: list[dict[str, Any]] = []
    stop = f"woow-test-monitor-end-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ready = threading.Event()

    def listen() -> None:
        with client.monitor() as m:
            ready.set()
            for cmd in m.listen():
                if stop in cmd["command"]:
                    return
                seen.append(cmd)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(5)
    time.sleep(0.05)  # (MONITOR is on before listen() reads its first line)
    try:
        yield seen
    finally:
        client.echo(stop)
        thread.join(5)
        client.close()
        assert not thread.is_alive()


def test_a_pass_sends_no_script_exists(
    settings: Settings,
    redis_url: str,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    """The due instant's pipeline (due keys + unchanged check of the prepared entries) and the fired
    write carry their scripts as ``EVALSHA`` alone: redis-py's ``Script`` in a pipeline asked
    ``SCRIPT EXISTS`` first, one more round trip on every pass."""
    keys = Keys(settings.key_prefix)
    ids = [make_trigger(EVERY_SECOND, updated_at=datetime.now(UTC)).id for _ in range(3)]
    reconciler.triggers(ids)
    sch = make_scheduler()
    _tick_until_prepared(sch)
    second = sch._prepared_second
    prepared_before = sch.fires_prepared
    with monitored(redis_url) as seen:
        _sleep_into(second)
        sch.tick()
    assert sch.fires_prepared - prepared_before == len(ids)  # the pass took the prepared path
    # beat's connections: those that touched this test's keys (other tests may share the server)
    ours = {(c["client_address"], c["client_port"]) for c in seen if settings.key_prefix in c["command"]}
    assert ours
    from_beat = [c["command"] for c in seen if (c["client_address"], c["client_port"]) in ours]
    assert any(c.startswith("EVALSHA") and keys.redbeat_entry(ids[0]) in c for c in from_beat)
    assert [c for c in from_beat if c.upper().startswith("SCRIPT")] == []


@pytest.mark.parametrize("chunk", [500, 1])  # 1: chunk by chunk (reads ahead, fired writes in flight)
def test_a_script_flush_before_every_pass_loses_and_doubles_no_fire(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    chunk: int,
) -> None:
    """The server forgets its scripts (``SCRIPT FLUSH``, as a restart does) just before each due
    second: every pass still sends every prepared fire of its second exactly once, never early,
    and records it (the scripts loaded again, and run, where ``EVALSHA`` met ``NOSCRIPT``)."""
    keys = Keys(settings.key_prefix)
    ids = [make_trigger(EVERY_SECOND, updated_at=datetime.now(UTC)).id for _ in range(3)]
    reconciler.triggers(ids)
    sch = make_scheduler(beat_dispatch_chunk=chunk)
    _tick_until_prepared(sch)
    first = sch._prepared_second
    prepared_before = sch.fires_prepared
    seconds = [first + n for n in range(3)]
    for second in seconds:
        if sch._prepared_second != second:
            _tick_until_prepared(sch)
        assert sch._prepared_second == second and time.time() < second
        assert [f for f in published(redis_client, settings) if _at(f) >= second] == []  # nothing early
        redis_client.script_flush()
        _sleep_into(second)
        sch.tick()
    fires = [f for f in published(redis_client, settings) if first <= _at(f) <= seconds[-1]]
    got = sorted((f["trigger_id"], _at(f)) for f in fires)
    assert got == sorted((str(i), float(s)) for i in ids for s in seconds)  # each once
    assert sch.fires_prepared - prepared_before == len(ids) * len(seconds)  # all from the preparation
    for i in ids:  # recorded: each entry advanced past the last second, one run counted per fire
        key = keys.redbeat_entry(i)
        assert redis_client.zscore(keys.redbeat_schedule, key) == seconds[-1] + 1
        last, _ = decode_meta(redis_client.hget(key, "meta"))
        assert last is not None and last.timestamp() == seconds[-1]


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_the_sync_writes_each_definition_with_its_sha1_and_keeps_it_in_step(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
) -> None:
    """``sha`` (what ``entries_unchanged.lua`` compares at the due instant instead of hashing each
    definition) is the sha1 of the stored definition: written with it by the sync, renewed with
    every new definition, and dropped by RedBeat's own ``save`` of a definition."""
    key = Keys(settings.key_prefix).redbeat_entry((t := make_trigger(EVERY_SECOND)).id)
    reconciler.triggers([t.id])
    first = redis_client.hget(key, "definition")
    assert first is not None and redis_client.hget(key, "sha") == _sha1(first)
    update_trigger(db, t.id, spec={"type": "cron", "expression": "*/2 * * * * ?"})
    reconciler.triggers([t.id])
    second = redis_client.hget(key, "definition")
    assert second is not None and second != first and redis_client.hget(key, "sha") == _sha1(second)
    app = create_app(settings)
    entry = WoowSchedulerEntry.from_key(key, app=app)
    entry.save()  # (RedBeat's API: a definition not written by the sync)
    assert redis_client.hget(key, "sha") is None


def test_the_unchanged_check_uses_the_stored_sha1_and_hashes_an_entry_without_one(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    check = redis_client.register_script(lua_source("entries_unchanged"))
    old, new = '{"name": "t"}', '{"name": "t2"}'
    with_sha, without_sha, changed, changed_without, gone = (f"{key_prefix}redbeat:e{i}" for i in range(5))
    redis_client.hset(with_sha, mapping={"definition": old, "sha": _sha1(old), "meta": "M"})
    redis_client.hset(without_sha, mapping={"definition": old, "meta": "M"})  # written by an older version
    redis_client.hset(changed, mapping={"definition": new, "sha": _sha1(new), "meta": "M"})
    redis_client.hset(changed_without, mapping={"definition": new, "meta": "M"})
    stale = f"{key_prefix}redbeat:e5"  # (a 'sha' not of its definition: the definition decides)
    redis_client.hset(stale, mapping={"definition": old, "sha": _sha1(new), "meta": "M"})
    keys = [with_sha, without_sha, changed, changed_without, gone, stale]
    assert check(keys=keys, args=[_sha1(old), "M"] * len(keys)) == [1, 1, 0, 0, 0, 1]
    assert check(keys=keys[:2], args=[_sha1(old), "M-other"] * 2) == [0, 0]  # meta moved on
