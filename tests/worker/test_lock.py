"""The per-workflow lock against a real Redis."""

from __future__ import annotations

import time
import uuid

import redis

from tests.support.stores import REDIS_URL
from woow_scheduler.keys import Keys, split_lock_value
from woow_scheduler.worker.lock import WorkflowLock, lock_holder, run_script


def test_acquire_renew_release(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    wf, ex = uuid.uuid4(), uuid.uuid4()
    lock = WorkflowLock(redis_client, keys.workflow_lock(wf), ttl=2.0, owner=str(ex))
    assert lock.acquire()
    assert lock_holder(redis_client, keys, wf) == str(ex)
    assert split_lock_value(lock.holder()) == (lock.token, str(ex))
    assert 0 < redis_client.pttl(lock.key) <= 2000
    redis_client.pexpire(lock.key, 500)
    assert lock.renew()
    assert redis_client.pttl(lock.key) > 1500
    other = WorkflowLock(redis_client, lock.key, ttl=2.0, owner=str(uuid.uuid4()))
    assert not other.acquire()
    assert lock.release()
    assert lock_holder(redis_client, keys, wf) is None
    assert not lock.release()  # nothing left to release


def test_non_owner_cannot_release_or_renew(redis_client: redis.Redis, key_prefix: str) -> None:
    key = Keys(key_prefix).workflow_lock(uuid.uuid4())
    owner = WorkflowLock(redis_client, key, ttl=5.0, owner="a")
    intruder = WorkflowLock(redis_client, key, ttl=5.0, owner="b")
    assert owner.acquire()
    assert not intruder.release()
    assert not intruder.renew()
    assert intruder.lost
    assert owner.owned()


def test_lock_of_a_crashed_owner_expires(redis_client: redis.Redis, key_prefix: str) -> None:
    key = Keys(key_prefix).workflow_lock(uuid.uuid4())
    crashed = WorkflowLock(redis_client, key, ttl=0.3, owner="dead")
    assert crashed.acquire()  # ... and never renews nor releases
    successor = WorkflowLock(redis_client, key, ttl=5.0, owner="next")
    assert not successor.acquire()
    time.sleep(0.45)
    assert successor.acquire()
    assert not crashed.renew()  # the old owner cannot extend the successor's lock
    assert not crashed.release()
    assert successor.owned()


def test_background_renewal_keeps_a_long_run_locked(redis_client: redis.Redis, key_prefix: str) -> None:
    key = Keys(key_prefix).workflow_lock(uuid.uuid4())
    lock = WorkflowLock(redis_client, key, ttl=0.6, owner="long")
    assert lock.acquire()
    with lock.kept_alive():
        time.sleep(2.0)  # more than three TTLs
        assert lock.owned()
        assert not WorkflowLock(redis_client, key, ttl=1, owner="x").acquire()
    assert not lock.lost
    time.sleep(0.8)  # renewal stopped with the block: the lock now expires
    assert lock.holder() is None


def test_a_vanished_lock_is_taken_back_but_never_after_release(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}lock:workflow:vanish"
    lock = WorkflowLock(redis_client, key, ttl=5)
    assert lock.acquire()
    redis_client.delete(key)  # Redis restarted empty under a running workflow
    assert lock.renew() and redis_client.get(key) == lock.value and not lock.lost
    assert 0 < redis_client.pttl(key) <= 5000
    other = WorkflowLock(redis_client, key, ttl=5)
    assert not other.acquire()  # the run still excludes others
    assert lock.release()
    assert not lock.renew()  # a renewal racing the release must not bring the lock back
    assert redis_client.get(key) is None
    taken = WorkflowLock(redis_client, key, ttl=5)
    assert taken.acquire()
    assert not lock.renew() and redis_client.get(key) == taken.value  # somebody else's: never touched


def test_release_nowait_frees_only_its_own_lock_and_keeps_the_connection_in_step(key_prefix: str) -> None:
    key = Keys(key_prefix).workflow_lock(uuid.uuid4())
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, max_connections=1)
    try:
        mine = WorkflowLock(client, key, 30, owner="e1")
        assert mine.acquire()
        mine.release_nowait()
        # the one pooled connection answers the next command with its own reply, not a skipped one
        assert client.get(key) is None and client.ping() is True
        other = WorkflowLock(client, key, 30, owner="e2")
        assert other.acquire()
        mine.release_nowait()  # not the owner any more: must not touch e2's lock
        assert client.get(key) == other.value
        assert not mine.renew()  # a release, even unanswered, is final: no renewal takes it back
        assert client.get(key) == other.value
        other.release()
    finally:
        client.close()


def test_release_nowait_sends_the_bytes_redis_py_would_pack() -> None:
    from woow_scheduler.lua import lua_source
    from woow_scheduler.redis_store import unanswered
    from woow_scheduler.worker.lock import release_command

    conn = redis.Connection()  # type: ignore[no-untyped-call]  # packs only: never connected
    for key, value in [("woow:lock:workflow:x", "tok:e1:7:12@node"), ("präfix:lock:é", "t:ü:1:2@n"), ("k", "")]:
        packed = conn.pack_commands(  # type: ignore[no-untyped-call]
            [("CLIENT", "REPLY", "SKIP"), ("EVAL", lua_source("release"), 1, key, value)]
        )
        assert unanswered(release_command(key, value)) == b"".join(packed)


def test_scripts_survive_a_flushed_script_cache_and_a_dropped_connection(key_prefix: str) -> None:
    key = Keys(key_prefix).workflow_lock(uuid.uuid4())
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, max_connections=1)
    admin = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        lock = WorkflowLock(client, key, 30, owner="e1")
        client.script_flush()
        assert lock.acquire()  # NOSCRIPT: loaded again
        client_id = client.client_id()
        admin.client_kill_filter(_id=str(client_id))
        assert lock.renew()  # the pooled connection was dropped under it: reconnects
        client.script_flush()
        admin.client_kill_filter(_id=str(client.client_id()))
        assert lock.renew() and client.get(key) == lock.value
        assert lock.release() and client.get(key) is None
    finally:
        client.close()
        admin.close()


def test_release_nowait_falls_back_to_a_waited_release_on_other_clients(key_prefix: str) -> None:
    import fakeredis

    client = fakeredis.FakeRedis(decode_responses=True)
    lock = WorkflowLock(client, f"{key_prefix}lock", 30, owner="e1")
    assert lock.acquire()
    lock.release_nowait()
    assert client.get(f"{key_prefix}lock") is None


def test_fences_increase_and_a_key_taken_since_is_never_taken_back(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}lock:workflow:fenced"
    first = WorkflowLock(redis_client, key, ttl=0.3, owner="first")
    assert first.acquire() and first.fence is not None
    assert first.check() is None
    time.sleep(0.4)  # first stalls past its TTL and the next run takes the lock
    second = WorkflowLock(redis_client, key, ttl=5, owner="second")
    assert second.acquire() and second.fence is not None and second.fence > first.fence
    reason = first.check()  # asks Redis once its lease is unconfirmed for a whole TTL
    assert reason is not None and "lost" in reason and "second" in reason
    assert second.release()  # the key vanished, but somebody held it since first did
    assert not first.renew() and first.lost
    assert redis_client.get(key) is None  # never re-taken
    redis_client.delete(second.fence_key)  # Redis lost the counter: fences still increase
    time.sleep(0.01)  # (the floor is the clock in ms; a restart takes far longer than a millisecond)
    third = WorkflowLock(redis_client, key, ttl=5, owner="third")
    assert third.acquire() and third.fence is not None and third.fence > second.fence
    # a vanished key nobody took since is re-taken, with a new fence
    redis_client.delete(key)
    assert third.renew() and third.retaken == 1 and third.fence > second.fence
    assert split_lock_value(redis_client.get(key)) == (third.token, "third")
    assert third.release()


def test_takeover_of_a_dead_holder_needs_its_exact_value(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}lock:workflow:dead"
    dead = WorkflowLock(redis_client, key, ttl=30, owner="dead")
    assert dead.acquire()
    heir = WorkflowLock(redis_client, key, ttl=30, owner="heir")
    assert not heir.acquire()
    assert not heir.acquire(expected="somebody-else")
    assert heir.acquire(expected=dead.value)
    assert heir.fence is not None and dead.fence is not None and heir.fence > dead.fence
    assert not dead.renew() and heir.owned()


def test_a_stalled_owner_nobody_replaced_keeps_its_lease_with_a_new_fence(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}lock:workflow:stalled"
    lock = WorkflowLock(redis_client, key, ttl=0.3, owner="solo")
    assert lock.acquire() and lock.fence is not None
    old = lock.fence
    time.sleep(0.4)  # past its TTL (a slow Redis, a pause), but no other run took the lock
    assert lock.check() is None
    assert lock.retaken == 1 and lock.fence > old and lock.owned()
    assert lock.release()


def test_the_backup_renewers_extend_only_mode_never_takes_a_key(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}lock:workflow:backup"
    lock = WorkflowLock(redis_client, key, ttl=2.0, owner="run")
    assert lock.acquire() and lock.fence is not None

    def extend(value: str) -> list[int]:  # what worker/backup.py sends
        args = [value, 5000, lock.fence, "", "", int(time.time() * 1000), 0, "extend-only"]
        return [int(x) for x in run_script(redis_client, "renew", [key, lock.fence_key], args)]

    assert extend(lock.value) == [1, lock.fence] and redis_client.pttl(key) > 4000
    redis_client.delete(key)  # vanished, nobody took it since: the run's own renewal would re-take it
    assert extend(lock.value) == [0, 0] and redis_client.get(key) is None  # the backup never does
    other = WorkflowLock(redis_client, key, ttl=2.0, owner="other")
    assert other.acquire()
    assert extend(lock.value) == [0, 0]
    assert redis_client.get(key) == other.value and redis_client.pttl(key) <= 2000
    assert other.release()
