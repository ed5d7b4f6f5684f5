"""The per-workflow lock: a Redis lease with a random token, a fence number, a TTL and renewal.

- ``acquire``: one Lua script (``lua/acquire.lua``) takes the key if it is free and gives the
  acquisition a **fence**: a number strictly greater than every earlier fence of that key (``INCR``
  of a counter beside the lock, never below the caller's clock in ms, so it stays increasing even
  after Redis lost the counter).  The value is ``<token>:<execution id>:<fence>:<pid>@<node>``, so
  anyone can see which execution holds the lock, with which fence, in which process.
  ``acquire(expected=value)`` takes over a lock still holding ``value`` (its holder is known dead).
- ``renew``: ``lua/renew.lua`` extends the TTL if the value is still ours.  It never takes a key
  somebody else holds; a vanished key (Redis lost it, or the TTL ran out while this owner stalled)
  is re-taken only if nobody acquired the lock since (the fence counter still shows our fence), and
  then with a **new** fence (``retaken``), which the run records on its row.
- ``check``: is the lease still ours?  ``None`` if so, else why not (lost, or not confirmed for a
  whole TTL: another run may hold it now).  The runner asks between steps and before recording
  success; a run that lost its lock is recorded ``lock_lost``, never ``succeeded``.
- ``release``: compare-and-``DEL`` (``lua/release.lua``); ``release_nowait`` sends it unanswered.
- While a run lasts, a background thread renews every lock it was given at ttl/3.  A step that
  holds the GIL starves it; in a pool child the backup renewer process (:mod:`.backup`) then
  extends the lease (compare-and-extend only) and ``check`` accepts its confirmation, so the lease
  outlives the step as long as the process runs (not when it is stopped: a frozen run still loses
  it).  Without a backup a starved lease expires, the next ``check`` reports it and the run stops.

One renewal thread serves every lock of a process (a thread per run would cost a thread start on
every execution); it is created lazily, after a fork, in the process that uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from ..errors import LockError
from ..keys import Keys, fence_key, lock_value, lock_value_parts, split_lock_value
from ..lua import lua_source
from ..redis_store import bulk, pack_command, plain_pool, send_unanswered

if TYPE_CHECKING:
    from .backup import Slot

log = logging.getLogger("woow.lock")

_SCRIPTS: dict[str, tuple[str, str]] = {}  # name -> (source, sha1)
FENCE_COUNTER_TTL_MS = 30 * 24 * 3600 * 1000  # a lost counter is re-seeded from the clock anyway


def _script(name: str) -> tuple[str, str]:
    found = _SCRIPTS.get(name)
    if found is None:
        text = lua_source(name)
        found = _SCRIPTS[name] = (text, hashlib.sha1(text.encode()).hexdigest())
    return found


def run_script(client: redis.Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA one of the shipped ``lua/*.lua`` scripts, loading it on first use per server.

    On a plain redis-py pool the command is packed here and sent on a pooled connection
    (:func:`_evalsha_direct`): the same bytes and the same reply parsing as ``Redis.evalsha``, without
    its per-command layers (measured in one worker process: see docs/performance.md).  A connection
    error or timeout there falls back to ``Redis.evalsha``, whose retries then apply as before.
    """
    text, sha = _script(name)
    try:
        if plain_pool(client):
            try:
                return _evalsha_direct(client, sha, keys, args)
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # the connection was dropped; redis-py's own path reconnects and retries
        return client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(text, len(keys), *keys, *args)


def _evalsha_direct(client: redis.Redis, sha: str, keys: list[str], args: list[Any]) -> Any:
    packed = pack_command("EVALSHA", sha, len(keys), *keys, *args)
    if packed is None:
        return client.evalsha(sha, len(keys), *keys, *args)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        # both disconnect the connection on any error (BaseException included): never left out of step
        conn.send_packed_command([packed])  # type: ignore[no-untyped-call]
        return conn.read_response()  # raises the script's error reply
    finally:
        pool.release(conn)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _node_id() -> str:
    """This machine and PID namespace: two processes with one node id see each other's pids."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        parts.append(f.read().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:12]


NODE = _node_id()


def holder_id() -> str:
    """``<pid>@<node>`` of the calling process (part of every lock value it takes)."""
    return f"{os.getpid()}@{NODE}"


@dataclass(frozen=True)
class LockValue:
    token: str
    owner: str | None
    fence: int | None
    pid: int | None
    node: str | None

    def holder_dead(self) -> bool:
        """True only when the holder ran in this node (machine + PID namespace) and its pid is gone."""
        if self.pid is None or self.node != NODE:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _is_zombie(self.pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def parse_value(value: str | bytes | None) -> LockValue | None:
    """A lock value (:func:`keys.lock_value`) -> its parts; ``None`` for no value."""
    token, owner, fence, holder = lock_value_parts(_str(value))
    if token is None:
        return None
    pid_s, _, node = (holder or "").partition("@")
    return LockValue(
        token=token, owner=owner, fence=fence, pid=int(pid_s) if pid_s.isdigit() else None, node=node or None
    )


def execution_lease_key(keys: Keys, execution_id: uuid.UUID | str) -> str:
    """Liveness key of one run of an ``allow`` workflow (which takes no workflow lock)."""
    return keys.execution_lease(execution_id)


class WorkflowLock:
    """One owner's handle on a lock key.  Not re-entrant; one handle per run."""

    def __init__(
        self, client: redis.Redis, key: str, ttl: float, *, owner: str | None = None, fence: str | None = None
    ) -> None:
        if ttl <= 0:
            raise LockError(f"lock ttl must be positive (got {ttl})")
        self.client = client
        self.key = key
        self.fence_key = fence or fence_key(key)
        self.ttl = float(ttl)
        self.token = secrets.token_hex(16)
        self.prefix = f"{self.token}:{owner or ''}"
        self.holder_id = holder_id()
        self.value = self.prefix  # complete once acquired: "<token>:<owner>:<fence>:<pid>@<node>"
        self.fence: int | None = None
        self.lost = False  # set when a renewal found the lock taken by somebody else
        self.lost_to: str | None = None  # the value found in its place
        self.retaken = 0  # times a vanished key was taken back (each with a new fence)
        self.valid_until = 0.0  # monotonic instant up to which the lease is known to be ours
        self._guard = threading.Lock()  # a renewal never runs concurrently with the release
        self._released = False
        self._slot: Slot | None = None  # where the backup renewer sees this lock (kept_alive)
        self._backup_until = 0.0  # monotonic instant up to which the backup renewer confirmed it

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def _set_fence(self, fence: int) -> None:
        self.fence = fence
        self.value = lock_value(self.prefix, fence, self.holder_id)

    def acquire(self, *, expected: str | None = None) -> bool:
        """Take the lock if it is free (or still holds exactly ``expected``); ``True`` when ours now."""
        with self._guard:
            started = time.monotonic()
            fence = int(
                run_script(
                    self.client,
                    "acquire",
                    [self.key, self.fence_key],
                    [self.prefix, self.ttl_ms, _floor(), self.holder_id, expected or "", FENCE_COUNTER_TTL_MS],
                )
            )
            if fence > 0:
                self._set_fence(fence)
                self.lost = False
                self.lost_to = None
                self._released = False
                self.valid_until = started + self.ttl
        return fence > 0

    def renew(self) -> bool:
        """Push the expiry ``ttl`` into the future if this handle still owns the lock (see module doc)."""
        with self._guard:
            if self._released or self.fence is None:
                return False
            started = time.monotonic()
            code, fence = (
                int(x)
                for x in run_script(
                    self.client,
                    "renew",
                    [self.key, self.fence_key],
                    [self.value, self.ttl_ms, self.fence, self.prefix, self.holder_id, _floor(), FENCE_COUNTER_TTL_MS],
                )
            )
            if code == 2:
                old = self.fence
                self._set_fence(fence)
                self.retaken += 1
                log.warning(
                    "lock %s had vanished and nobody took it since; taken back with fence %s (was %s)",
                    self.key,
                    fence,
                    old,
                )
            if code:
                self.valid_until = started + self.ttl
                slot = self._slot
                if slot is not None:
                    if code == 2:
                        self._publish(slot)  # the backup renews the new value, never the old one
                    else:
                        slot.stamp(slot.gen, self.valid_until)
            else:
                self.lost = True
                self.lost_to = _str(self.client.get(self.key))
        return code != 0

    def _confirmed_until(self) -> float:
        """Up to when the lease is known to be ours: by this process's renewals, or by the backup
        renewer's (read from shared memory only once this process's own confirmation ran out)."""
        until = self.valid_until
        slot = self._slot
        if slot is not None and time.monotonic() > until:
            self._backup_until = max(self._backup_until, slot.confirmed_until(slot.gen))
        return max(until, self._backup_until)

    def _reason(self) -> str | None:
        if self.lost:
            holder = parse_value(self.lost_to)
            who = f"execution {holder.owner} (fence {holder.fence})" if holder and holder.owner else "nobody"
            return f"lock {self.key} lost (fence {self.fence}); now held by {who}"
        until = self._confirmed_until()
        if time.monotonic() > until:
            late = time.monotonic() - until
            return (
                f"lease of {self.key} (fence {self.fence}) not confirmed for {self.ttl + late:.1f}s "
                f"(ttl {self.ttl:g}s) and Redis could not confirm it: the run stalled or Redis was unreachable"
            )
        return None

    def check(self) -> str | None:
        """``None`` while the lease is ours; otherwise a one-line reason why not.

        Free while a renewal -- of this process or of its backup renewer -- confirmed the lease less
        than ``ttl`` ago.  Past that (a slow Redis, a stalled process) Redis is asked once
        (:meth:`renew`): the lease still holds if the key still holds our value, or if it vanished
        and nobody took the lock since (re-taken with a new fence); it is lost if another run took
        the lock meanwhile.
        """
        if not self.lost and time.monotonic() <= self._confirmed_until():
            return None
        if not self.lost:
            with contextlib.suppress(redis.RedisError):  # unreachable: the lease cannot be confirmed
                self.renew()
        return self._reason()

    def confirm(self) -> str | None:
        """Like :meth:`check`, but always asks Redis (one round trip; renews the lease when still ours)."""
        reason = self.check()
        if reason is not None:
            return reason
        try:
            if not self.renew():
                return self._reason() or f"lock {self.key} lost"
        except redis.RedisError:
            return self._reason()  # unreachable: the lease is ours until valid_until
        return None

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
        if not plain_pool(self.client):
            self.release()
            return
        packed = release_command(self.key, self.value)
        with self._guard:
            self._released = True
            send_unanswered(self.client, packed)

    def holder(self) -> str | None:
        """The current value of the key (``<token>:<execution id>:...``), or ``None`` when free."""
        return _str(self.client.get(self.key))

    def owned(self) -> bool:
        return self.holder() == self.value

    def _publish(self, slot: Slot) -> None:
        assert self.fence is not None
        slot.publish(self.key, self.fence_key, self.value, self.fence, self.ttl_ms, self.valid_until)
        self._backup_until = 0.0

    @contextmanager
    def kept_alive(self, backup_url: str | None = None) -> Iterator[WorkflowLock]:
        """Renew in the background (every ttl/3) for as long as the block runs; with ``backup_url``,
        the backup renewer this process started for that Redis (:mod:`.backup`) stands by too."""
        from .backup import backup_for

        backup = backup_for(backup_url) if backup_url else None
        slot = backup.take() if backup is not None and self.fence is not None else None
        if slot is not None:
            self._slot = slot
            self._publish(slot)
        keeper = renewal_thread()
        keeper.add(self)
        try:
            yield self
        finally:
            keeper.discard(self)
            if slot is not None:
                self._slot = None
                slot.free()  # the backup never renews this lock again


_RELEASE_HEAD: bytes | None = None


def release_command(key: str, value: str) -> bytes:
    """``EVAL <release.lua> 1 key value`` in RESP (what :meth:`WorkflowLock.release_nowait` sends
    behind ``CLIENT REPLY SKIP``, :func:`~woow_scheduler.redis_store.send_unanswered`).

    The same bytes redis-py's packer builds, but the constant head (the command header and the
    script's text) is encoded once per process instead of on every release.
    """
    global _RELEASE_HEAD
    head = _RELEASE_HEAD
    if head is None:
        text, _ = _script("release")
        head = _RELEASE_HEAD = b"*5\r\n" + bulk("EVAL") + bulk(text) + bulk("1")
    return head + bulk(key) + bulk(value)


def _floor() -> int:
    return int(time.time() * 1000)



def pinned_lock(client: redis.Redis, key: str | None, token: str | None) -> tuple[str, LockValue] | None:
    """The value at ``key`` and its parts while it still carries ``token`` (the lock an execution row
    pinned at claim time), else ``None``: the run's lock is gone (expired, released, another run's)."""
    if key is None or token is None:
        return None
    value = _str(client.get(key))
    held = parse_value(value)
    if value is None or held is None or held.token != token:
        return None
    return value, held


def lock_holder(client: redis.Redis, keys: Keys, workflow_id: uuid.UUID | str) -> str | None:
    """Execution id holding the workflow's lock (the raw token when it names none), or ``None``."""
    value = _str(client.get(keys.workflow_lock(workflow_id)))
    if value is None:
        return None
    token, owner = split_lock_value(value)
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
