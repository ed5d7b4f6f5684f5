"""The per-workflow lock: a Redis key with a random token, a TTL, renewal while a run lasts.

- ``acquire``: ``SET key value NX PX ttl``; the value is ``<token>:<execution id>`` so anyone can see
  which execution holds the lock (skipped rows name it, listings show triggers BLOCKED).
- ``renew``: compare-and-``PEXPIRE`` in one Lua script (``woow_scheduler/lua/renew.lua``).
- ``release``: compare-and-``DEL`` in one Lua script (``woow_scheduler/lua/release.lua``): only the owner releases;
  ``release_nowait`` sends the same script without waiting for the answer (end of a run).
- While a run lasts, a background thread renews every lock it was given at ttl/3, so a run longer
  than the TTL keeps its lock; a crashed worker stops renewing and its lock expires.

One renewal thread serves every lock of a process (a thread per run would cost a thread start on
every execution); it is created lazily, after a fork, in the process that uses it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from ..errors import LockError
from ..keys import Keys
from ..lua import lua_source

log = logging.getLogger("woow.lock")

_SCRIPTS: dict[str, tuple[str, str]] = {}  # name -> (source, sha1)


def _script(name: str) -> tuple[str, str]:
    found = _SCRIPTS.get(name)
    if found is None:
        text = lua_source(name)
        found = _SCRIPTS[name] = (text, hashlib.sha1(text.encode()).hexdigest())
    return found


def run_script(client: redis.Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA one of the shipped ``lua/*.lua`` scripts, loading it on first use per server."""
    text, sha = _script(name)
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(text, len(keys), *keys, *args)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def split_value(value: str | None) -> tuple[str | None, str | None]:
    """``"<token>:<execution id>"`` -> ``(token, execution id)``; a bare token gives ``(token, None)``."""
    if not value:
        return None, None
    token, sep, owner = value.partition(":")
    return token, (owner if sep and owner else None)


def execution_lease_key(keys: Keys, execution_id: uuid.UUID | str) -> str:
    """Liveness key of one run of an ``allow`` workflow (which takes no workflow lock)."""
    return keys.execution_lease(execution_id)


class WorkflowLock:
    """One owner's handle on a lock key.  Not re-entrant; one handle per run."""

    def __init__(self, client: redis.Redis, key: str, ttl: float, *, owner: str | None = None) -> None:
        if ttl <= 0:
            raise LockError(f"lock ttl must be positive (got {ttl})")
        self.client = client
        self.key = key
        self.ttl = float(ttl)
        self.token = secrets.token_hex(16)
        self.value = f"{self.token}:{owner}" if owner else self.token
        self.lost = False  # set when a renewal found the lock taken by somebody else
        self._guard = threading.Lock()  # a renewal never runs concurrently with the release
        self._released = False

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def acquire(self) -> bool:
        """Take the lock if it is free; ``True`` when this handle now owns it."""
        with self._guard:
            ok = bool(self.client.set(self.key, self.value, nx=True, px=self.ttl_ms))
            if ok:
                self.lost = False
                self._released = False
        return ok

    def renew(self) -> bool:
        """Push the expiry ``ttl`` into the future if this handle still owns the lock.

        A lock whose key vanished (Redis restarted empty, or the TTL ran out while this owner
        stalled) is taken back, so a run still going keeps excluding others; a lock somebody else
        holds is lost.  After ``release`` a renewal does nothing.
        """
        with self._guard:
            if self._released:
                return False
            result = int(run_script(self.client, "renew", [self.key], [self.value, self.ttl_ms]))
        if result == 2:
            log.warning("lock %s had vanished (Redis restarted or the owner stalled); taken back", self.key)
        if result == 0:
            self.lost = True
        return result != 0

    def release(self) -> bool:
        """Delete the lock if this handle owns it; never touches somebody else's lock."""
        with self._guard:
            self._released = True
            ok = bool(run_script(self.client, "release", [self.key], [self.value]))
        if not ok:
            self.lost = True  # it was not ours any more when the run ended
        return ok

    def release_nowait(self) -> None:
        """Release without waiting for Redis's answer (the end of a recorded run).

        ``CLIENT REPLY SKIP`` and the compare-and-delete script go out in one write on a pooled
        connection, so the lock is gone as soon as Redis reads them and the run does not wait a
        round trip for an answer it has no use for.  The connection stays in step (Redis sends no
        reply to either command).  If the write fails the lock expires at its TTL, as it would if
        a waited-for release failed.  Clients that are not a plain redis-py pool (fakeredis in the
        embedded fallback) get :meth:`release`.
        """
        pool = self.client.connection_pool
        if type(pool) is not redis.ConnectionPool or pool.connection_class not in _PLAIN_CONNECTIONS:
            self.release()
            return
        text, _ = _script("release")
        with self._guard:
            self._released = True
            conn = pool.get_connection()
            try:
                packed = conn.pack_commands(  # type: ignore[no-untyped-call]
                    [("CLIENT", "REPLY", "SKIP"), ("EVAL", text, 1, self.key, self.value)]
                )
                conn.send_packed_command(packed)  # type: ignore[no-untyped-call]
            except BaseException:
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise
            finally:
                pool.release(conn)

    def holder(self) -> str | None:
        """The current value of the key (``<token>:<execution id>``), or ``None`` when free."""
        return _str(self.client.get(self.key))

    def owned(self) -> bool:
        return self.holder() == self.value

    @contextmanager
    def kept_alive(self) -> Iterator[WorkflowLock]:
        """Renew in the background (every ttl/3) for as long as the block runs."""
        keeper = renewal_thread()
        keeper.add(self)
        try:
            yield self
        finally:
            keeper.discard(self)


_PLAIN_CONNECTIONS = (redis.Connection, redis.SSLConnection, redis.UnixDomainSocketConnection)


def lock_holder(client: redis.Redis, keys: Keys, workflow_id: uuid.UUID | str) -> str | None:
    """Execution id holding the workflow's lock (the raw token when it names none), or ``None``."""
    value = _str(client.get(keys.workflow_lock(workflow_id)))
    if value is None:
        return None
    token, owner = split_value(value)
    return owner or token


IDLE_WAKE = 1.0  # seconds between wake-ups of an idle renewal thread


class _Renewer:
    """One daemon thread renewing every registered lock at a third of its TTL."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[WorkflowLock, float]] = {}  # id(lock) -> (lock, next renewal)
        self._cond = threading.Condition()
        self._wake_at = 0.0  # when the thread wakes up next on its own (monotonic)
        self._thread = threading.Thread(target=self._loop, name="woow-lock-renewer", daemon=True)
        self._thread.start()

    def add(self, lock: WorkflowLock) -> None:
        due = time.monotonic() + lock.ttl / 3
        with self._cond:
            self._locks[id(lock)] = (lock, due)
            if due < self._wake_at:  # only then: waking the thread on every run costs a switch per run
                self._cond.notify()

    def discard(self, lock: WorkflowLock) -> None:
        with self._cond:
            self._locks.pop(id(lock), None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [lk for lk, at in self._locks.values() if at <= now]
                if not due:
                    # idle: wake up at IDLE_WAKE anyway, so a lock added later (due at ttl/3 or
                    # more from now) rarely needs a notify
                    next_at = min((at for _, at in self._locks.values()), default=now + IDLE_WAKE)
                    self._wake_at = max(now + 0.01, next_at)
                    self._cond.wait(timeout=self._wake_at - now)
                    continue
                for lk in due:
                    self._locks[id(lk)] = (lk, now + lk.ttl / 3)
            for lk in due:
                self._renew(lk)

    def _renew(self, lock: WorkflowLock) -> None:
        try:
            if not lock.renew():
                with self._cond:
                    kept = self._locks.pop(id(lock), None) is not None
                if kept:  # discarded meanwhile: its run finished and released it; nothing was lost
                    log.error("lock lost: %s is no longer held by %s (expired or taken)", lock.key, lock.value)
        except redis.RedisError as exc:  # try again at the next round; the TTL leaves two more
            log.warning("lock renewal of %s failed: %s", lock.key, exc)


_renewer: tuple[int, _Renewer] | None = None
_renewer_guard = threading.Lock()


def renewal_thread() -> _Renewer:
    """This process's renewal thread (a new one after a fork: threads do not survive it)."""
    global _renewer
    pid = os.getpid()
    current = _renewer
    if current is not None and current[0] == pid:
        return current[1]
    with _renewer_guard:
        if _renewer is None or _renewer[0] != pid:
            _renewer = (pid, _Renewer())
        return _renewer[1]
