"""Lease renewal from a helper process, so that a step holding the GIL cannot starve it.

Each pool child forks, at its first run, one small helper process (:class:`Helper`) with its own
Redis connection; for every run the child hands it the run's lock (value, fence, TTL) and takes it
back at the end (:class:`ProcessRenewer`).  While it holds a run's lock the helper renews it at
``ttl / 3`` (``lua/renew.lua``) and publishes what Redis answered in a few shared-memory words that
the run reads at its step boundaries.

It stops renewing that lock -- and never renews it again -- when:

- the run ends: the child tells it to drop the lock and releases it; the release bumps the lock's
  fence counter, so a renewal still in flight cannot re-take the vanished key (``lua/renew.lua``
  re-takes only while the counter still shows the run's fence);
- the pool child dies (``kill -9``, OOM killer): the kernel closes the child's end of the control
  pipe, the helper reads EOF at once and exits, so a dead run's lock is never kept alive: the lock
  value still names the pool child's pid, which is gone, and the redelivered fire takes it over;
- Redis reports the lock held by another fence (``lost``).

While the pool child is *stopped* (``SIGSTOP``, a debugger; state ``T``/``t`` in
``/proc/<ppid>/stat``) the helper does not renew, so a frozen run loses its lease as it did with the
in-process renewal thread: a frozen process, unlike a busy one, would otherwise hold its lock with
no bound but Celery's hard time limit.  A step that merely holds the GIL (a C call, a tight loop)
keeps its lease.

The helper starts with a clean slate: everything it needs is made before the fork, it closes every
inherited descriptor but its two pipes and stdio, restores default signal handlers, never logs (the
child logs what the shared words say) and ends with ``os._exit``.  Per run it costs two pipe
writes; the fork is paid once per pool child (figures in docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
import os
import select
import signal
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

import redis

from ..keys import lock_value
from ..redis_store import make_redis

if TYPE_CHECKING:
    from .lock import WorkflowLock

# shared words: seq (odd while being written), confirmed until (monotonic ns), fence, state, run
# number (what the helper publishes about an earlier run is never applied to the current one)
_LAYOUT = struct.Struct("=qqqqq")
OK, LOST, GONE = 0, 1, 2  # state: renewing, lock taken by another fence, not renewing it any more
STOPPED_POLL = 0.1  # seconds between looks at a stopped parent
_KEEP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD")


def _readable(fd: int, timeout: float | None) -> bool:
    """Wait until ``fd`` can be read (data or EOF); ``poll``, not ``select``: any fd number works."""
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(p.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)))


def _parent_stopped(ppid: int) -> bool:
    try:
        with open(f"/proc/{ppid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


class Helper:
    """One renewal helper process of a pool child (one lock at a time)."""

    def __init__(self, redis_url: str, script: tuple[str, str]) -> None:
        self.redis_url = redis_url
        self.owner_pid = os.getpid()
        self.busy = threading.Lock()  # held while a run's lock is handed to it
        self._shm = mmap.mmap(-1, _LAYOUT.size)
        self._buf = b""
        self.runs = 0  # number of the last run handed over
        self.alive = False
        # made before the fork: a process forked from one with other threads must not take a lock
        # one of them may hold (imports, logging, pools); the client connects at its first use
        client = make_redis(redis_url)
        text, sha = script
        ctl_r, ctl_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the helper (covered by the worker tests)
            code = 1
            try:
                _helper_main(ctl_r, rep_w, self._shm, client, text, sha)
                code = 0
            finally:
                os._exit(code)
        os.close(ctl_r)
        os.close(rep_w)
        self.pid, self._ctl_w, self._rep_r = pid, ctl_w, rep_r
        self.alive = True

    def read(self) -> tuple[int, int, int, int, int]:
        while True:
            seq, at, fence, state, gen = _LAYOUT.unpack_from(self._shm, 0)
            if seq % 2 == 0 and _LAYOUT.unpack_from(self._shm, 0)[0] == seq:
                return seq, at, fence, state, gen
            time.sleep(0)

    def send(self, message: bytes) -> bool:
        """Send one message that gets no answer; ``False`` if the helper is gone."""
        if not self.alive:
            return False
        try:
            os.write(self._ctl_w, message + b"\n")
        except OSError:
            self.kill()
            return False
        return True

    def ask(self, message: bytes, answer: bytes, timeout: float) -> bool | None:
        """Send one message and wait for its answer: ``True``, ``None`` on timeout, ``False`` if gone."""
        if not self.alive:
            return False
        try:
            os.write(self._ctl_w, message + b"\n")
            deadline = time.monotonic() + timeout
            while True:
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    if line == answer:
                        return True
                left = deadline - time.monotonic()
                if left <= 0 or not _readable(self._rep_r, left):
                    return None
                data = os.read(self._rep_r, 4096)
                if not data:
                    self.kill()
                    return False
                self._buf += data
        except OSError:
            self.kill()
            return False

    def kill(self) -> None:
        """End the helper for good (it is gone, or stuck and must not renew later)."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self._ctl_w, self._rep_r):
            with contextlib.suppress(OSError):
                os.close(fd)


_helpers: dict[tuple[int, str], Helper] = {}
_helpers_guard = threading.Lock()


def helper_for(redis_url: str, script: tuple[str, str]) -> Helper | None:
    """This process's helper for ``redis_url``, free for a run; ``None`` when it is busy (another
    run of this process holds it: threads) -- the caller then renews from a thread."""
    key = (os.getpid(), redis_url)
    with _helpers_guard:
        found = _helpers.get(key)
        if found is None or not found.alive:
            found = _helpers[key] = Helper(redis_url, script)
    if not found.busy.acquire(blocking=False):
        return None
    return found


class ProcessRenewer:
    """One run's use of the helper (see the module doc)."""

    def __init__(self, lock: WorkflowLock, helper: Helper) -> None:
        self.lock = lock
        self.helper = helper
        self._seen_seq = -1
        helper.runs += 1
        self.gen = helper.runs

    def start(self) -> bool:
        lock = self.lock
        msg = {
            "key": lock.key,
            "fence_key": lock.fence_key,
            "value": lock.value,
            "fence": lock.fence,
            "prefix": lock.prefix,
            "holder": lock.holder_id,
            "ttl_ms": lock.ttl_ms,
            "ttl": lock.ttl,
            "until": int(lock.valid_until * 1e9),
            "gen": self.gen,
        }
        self._seen_seq = self.helper.read()[0]
        if not self.helper.send(b"a" + json.dumps(msg).encode()):  # no answer awaited
            self.helper.busy.release()
            return False
        return True

    def poll(self) -> int:
        """Apply what the helper published to the lock; returns its state."""
        seq, at, fence, state, gen = self.helper.read()
        if gen != self.gen:
            return OK  # the helper has not taken this run's lock yet
        if seq != self._seen_seq:
            self._seen_seq = seq
            self.lock._from_renewer(at / 1e9, fence, lost=state == LOST)
        return state

    def renew_now(self, timeout: float) -> bool:
        """Ask the helper to renew at once and wait for its answer; ``False`` if it is gone."""
        answered = self.helper.ask(b"r", b".", timeout)
        self.poll()
        return answered is not False

    def stop(self) -> None:
        """Take the lock back from the helper (no answer awaited: the release that follows bumps
        the lock's fence counter, so a renewal still in flight cannot re-take the key)."""
        try:
            self.poll()
            self.helper.send(b"q")
        finally:
            self.helper.busy.release()


def _helper_main(
    ctl_r: int, rep_w: int, shm: mmap.mmap, client: redis.Redis, text: str, sha: str
) -> None:  # pragma: no cover
    gc.disable()  # objects inherited from the parent are never collected here
    for name in _KEEP_SIGNALS:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    low = 3
    for fd in sorted({ctl_r, rep_w}):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    ppid = os.getppid()
    seq = _LAYOUT.unpack_from(shm, 0)[0]

    def publish(until: int, fence: int, state: int) -> None:
        nonlocal seq
        struct.pack_into("=q", shm, 0, seq + 1)  # odd: being written
        struct.pack_into("=qqqq", shm, 8, until, fence, state, run["gen"] if run is not None else 0)
        seq += 2
        struct.pack_into("=q", shm, 0, seq)

    run: dict[str, Any] | None = None
    state = GONE
    until = 0
    next_at = 0.0
    buf = b""

    def renew() -> None:
        nonlocal state, until
        assert run is not None
        args = [run["value"], run["ttl_ms"], run["fence"], run["prefix"], run["holder"]]
        args += [int(time.time() * 1000), 30 * 24 * 3600 * 1000]
        keys = [run["key"], run["fence_key"]]
        started = time.monotonic_ns()
        try:
            try:
                code, got = (int(x) for x in client.evalsha(sha, 2, *keys, *args))
            except redis.exceptions.NoScriptError:
                code, got = (int(x) for x in client.eval(text, 2, *keys, *args))
        except redis.RedisError:
            return  # try again at the next round; the TTL leaves two more
        if code == 2:  # a vanished key taken back with a new fence
            run["fence"] = got
            run["value"] = lock_value(run["prefix"], got, run["holder"])
        if code > 0:
            until = started + int(run["ttl"] * 1e9)
        else:
            state = LOST
        publish(until, run["fence"], state)

    while True:
        wait = max(0.0, next_at - time.monotonic()) if run is not None and state == OK else None
        if _readable(ctl_r, wait):
            data = os.read(ctl_r, 4096)
            if not data:
                return  # the pool child died (or closed the pipe): never renew again
            buf += data
        if os.getppid() != ppid:
            return  # the pool child died (re-parented before we saw EOF)
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            kind, rest = line[:1], line[1:]
            if kind == b"a":
                run = json.loads(rest)
                state, until = OK, int(run["until"])
                publish(until, run["fence"], state)
                next_at = time.monotonic() + run["ttl"] / 3
            elif kind == b"r":
                if run is not None and state == OK:
                    renew()
                    next_at = time.monotonic() + run["ttl"] / 3
                os.write(rep_w, b".\n")  # only a renewal asked for is answered: the pipe never fills
            else:  # b"q": the run ended
                if run is not None:
                    publish(until, run["fence"], LOST if state == LOST else GONE)
                run, state = None, GONE
        if run is not None and state == OK and time.monotonic() >= next_at:
            if _parent_stopped(ppid):
                next_at = time.monotonic() + STOPPED_POLL  # frozen: let its lease run out
                continue
            renew()
            next_at = time.monotonic() + run["ttl"] / 3
