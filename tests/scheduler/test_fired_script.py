"""beat's per-entry write (lua/entry_fired.lua) never moves an entry back over a newer write."""

from __future__ import annotations

import hashlib

import redis

from woow_scheduler.keys import Keys
from woow_scheduler.lua import lua_source


def test_a_stale_leader_cannot_move_an_entry_backwards(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    entry = f"{key_prefix}redbeat:entry"
    script = redis_client.register_script(lua_source("entry_fired"))
    definition = '{"name": "t"}'
    redis_client.hset(entry, mapping={"definition": definition, "meta": "M-old"})
    sha = hashlib.sha1(definition.encode()).hexdigest()
    # the new leader advanced the entry from M-old to M-new
    assert script(keys=[entry, keys.redbeat_schedule, keys.fired], args=[sha, "M-new", 200, "r1", 1000, "M-old"]) == 1
    # the paused old leader, which also read M-old, comes back with an older position
    assert script(keys=[entry, keys.redbeat_schedule, keys.fired], args=[sha, "M-older", 100, "r2", 1000, "M-old"]) == 2
    assert redis_client.hget(entry, "meta") == "M-new"
    assert redis_client.zscore(keys.redbeat_schedule, entry) == 200
    assert redis_client.xlen(keys.fired) == 2  # its fires went out: they are still recorded


def test_the_chunk_script_does_what_the_entry_script_does_for_each_entry(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """lua/entries_fired.lua (one call per chunk) against lua/entry_fired.lua (one call per entry),
    on the same four cases: written, moved on meanwhile, gone, definition changed meanwhile."""
    keys = Keys(key_prefix)
    one = redis_client.register_script(lua_source("entry_fired"))
    many = redis_client.register_script(lua_source("entries_fired"))
    definition = '{"name": "t"}'
    sha = hashlib.sha1(definition.encode()).hexdigest()
    cases = [("written", "M-old"), ("moved", "M-other"), ("gone", None), ("changed", "M-old")]
    states = {}
    for variant in ("one", "many"):
        schedule, fired = f"{keys.redbeat_schedule}:{variant}", f"{keys.fired}:{variant}"
        entries = [f"{key_prefix}redbeat:{variant}:{name}" for name, _ in cases]
        for entry, (name, meta) in zip(entries, cases, strict=True):
            if meta is not None:
                text = definition if name != "changed" else '{"name": "t2"}'
                redis_client.hset(entry, mapping={"definition": text, "meta": meta})
        args = [(sha, "M-new", 200, f"r-{name}", "M-old") for name, _ in cases]
        if variant == "one":
            results = [
                one(keys=[e, schedule, fired], args=[a[0], a[1], a[2], a[3], 1000, a[4]])
                for e, a in zip(entries, args, strict=True)
            ]
        else:
            results = many(keys=[schedule, fired, *entries], args=[1000, *[x for a in args for x in a]])
        states[variant] = (
            results,
            [redis_client.hgetall(e) for e in entries],
            [redis_client.zscore(schedule, e) for e in entries],
            [r[1]["f"] for r in redis_client.xrange(fired)],
        )
    assert states["many"] == states["one"]
    assert states["one"][0] == [1, 2, 0, 1]
    assert states["one"][2] == [200, None, None, 0]  # a changed definition is made due for a new look
