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
