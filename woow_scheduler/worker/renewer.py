"""Lease renewal from a helper process, so that a step holding the GIL cannot starve it.

A run's lock (:class:`.lock.WorkflowLock`) is renewed by a tiny process forked from the pool child
when the run starts (:class:`ProcessRenewer`).  It owns exactly one lock and has its own Redis
connection; it renews at ``ttl / 3`` with the run's value and fence (``lua/renew.lua``), and
publishes what Redis answered in a few shared-memory words the run reads at its step boundaries.

It stops -- and never renews again -- when:

- the run ends: the parent closes the control pipe and waits for the helper to exit before it
  releases the lock (a renewal still in flight after the release would re-take the vanished key);
- the parent dies (``kill -9``, OOM killer): the kernel closes the parent's end of the control
  pipe, the helper reads EOF at once and exits, so a dead run's lock is never kept alive: the lock
  value still names the pool child's pid, which is gone, and the redelivered fire takes it over;
- Redis reports the lock held by another fence (``lost``).

While the parent process is *stopped* (``SIGSTOP``, a debugger; state ``T``/``t`` in
``/proc/<ppid>/stat``) the helper does not renew, so a frozen run loses its lease as it did with the
in-process renewal thread: a frozen process, unlike a busy one, would otherwise hold its lock with
no bound but Celery's hard time limit.  A step that merely holds the GIL (a C call, a tight loop)
keeps its lease.

The helper starts with a clean slate: it closes every inherited descriptor but its two pipes and
stdio, restores default signal handlers, never logs (the parent logs what the shared words say) and
ends with ``os._exit``.  Per-run cost: one ``fork`` and one Redis connection (see
docs/reliability.md for the measured figure).
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import select
import signal
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from .lock import WorkflowLock

# shared words: seq (odd while being written), confirmed_at (monotonic ns), fence, state
_LAYOUT = struct.Struct("=qqqq")
OK, LOST, GONE = 0, 1, 2  # state: renewing, lock taken by another fence, helper ended
STOPPED_POLL = 0.1  # seconds between looks at a stopped parent
STOP_WAIT = 5.0  # seconds the parent waits for the helper to exit before killing it
_KEEP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD")


_UNREAPED: list[int] = []  # helpers that said they end but may not have exited yet


def reap() -> None:
    """Collect the helpers of earlier runs that have exited (no zombies left behind)."""
    for pid in list(_UNREAPED):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _UNREAPED.remove(pid)


def _readable(fd: int, timeout: float) -> bool:
    """Wait until ``fd`` can be read (data or EOF); ``poll``, not ``select``: any fd number works."""
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(p.poll(max(0, int(timeout * 1000) + 1)))


def _parent_stopped(ppid: int) -> bool:
    try:
        with open(f"/proc/{ppid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


class ProcessRenewer:
    """The helper process renewing one lock (see the module doc)."""

    def __init__(self, lock: WorkflowLock, connect: Callable[[], redis.Redis]) -> None:
        self.lock = lock
        self._connect = connect
        self._shm = mmap.mmap(-1, _LAYOUT.size)
        self._seen_seq = 0
        self.pid = 0
        self._ctl_w = -1
        self._rep_r = -1
        self._client: redis.Redis | None = None

    # -- parent side ------------------------------------------------------------------------------

    def start(self) -> None:
        assert self.lock.fence is not None
        # everything the helper needs is made here, before the fork: a process forked from one with
        # other threads must not take a lock one of them may hold (imports, logging, pools)
        self._client = self._connect()  # connects lazily, in the helper, at its first renewal
        self.lock._renew_call(self.lock.value, self.lock.fence)  # loads the script text
        self._write(self.lock.fence, int(self.lock.valid_until * 1e9), OK, seq=0)
        reap()
        ctl_r, ctl_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the helper (covered by the worker tests)
            code = 1
            try:
                self._child(ctl_r, rep_w)
                code = 0
            finally:
                os._exit(code)
        os.close(ctl_r)
        os.close(rep_w)
        self.pid, self._ctl_w, self._rep_r = pid, ctl_w, rep_r

    def _read(self) -> tuple[int, int, int, int]:
        while True:
            seq, at, fence, state = _LAYOUT.unpack_from(self._shm, 0)
            if seq % 2 == 0 and _LAYOUT.unpack_from(self._shm, 0)[0] == seq:
                return seq, at, fence, state
            time.sleep(0)

    def poll(self) -> int:
        """Apply what the helper published to the lock; returns its state."""
        seq, at, fence, state = self._read()
        if seq != self._seen_seq:
            self._seen_seq = seq
            self.lock._from_renewer(at / 1e9, fence, lost=state == LOST)
        return state

    def renew_now(self, timeout: float) -> bool:
        """Ask the helper to renew at once and wait for its answer; ``False`` if it is gone."""
        if self._ctl_w < 0:
            return False
        try:
            os.write(self._ctl_w, b"r")
        except OSError:
            return False
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.poll()
                return True  # no answer in time (a slow Redis): the lease stands as published
            ready = _readable(self._rep_r, left)
            if ready:
                data = os.read(self._rep_r, 64)
                self.poll()
                return bool(data)  # b"" = the helper ended

    def stop(self) -> None:
        """End the helper; returns once it has said it will never renew again (idempotent).

        The helper answers ``Q`` just before it exits; the lock can then be released at once (the
        exit itself, a page-table teardown of a few ms, happens after), and the helper is reaped
        now if it is gone already, else at the next run's start.
        """
        if self._ctl_w < 0:
            return
        ended = False
        with contextlib.suppress(OSError):
            os.write(self._ctl_w, b"q")
            deadline = time.monotonic() + STOP_WAIT
            while not ended and time.monotonic() < deadline:
                ready = _readable(self._rep_r, deadline - time.monotonic())
                if ready:
                    data = os.read(self._rep_r, 64)
                    ended = not data or b"Q" in data  # EOF: it has exited already
        os.close(self._ctl_w)
        os.close(self._rep_r)
        self._ctl_w = self._rep_r = -1
        if not ended:  # stuck on a Redis call: it must not renew later
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        else:
            _UNREAPED.append(self.pid)
            reap()
        self.poll()
        self._shm.close()

    # -- helper side ------------------------------------------------------------------------------

    def _write(self, fence: int, at_ns: int, state: int, *, seq: int | None = None) -> None:
        cur = _LAYOUT.unpack_from(self._shm, 0)[0] if seq is None else seq
        struct.pack_into("=q", self._shm, 0, cur + 1)  # odd: being written
        struct.pack_into("=qqq", self._shm, 8, at_ns, fence, state)
        struct.pack_into("=q", self._shm, 0, cur + 2)

    def _child(self, ctl_r: int, rep_w: int) -> None:  # pragma: no cover - runs in the helper
        gc.disable()  # objects inherited from the parent are never collected here
        for name in _KEEP_SIGNALS:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        keep = sorted({0, 1, 2, ctl_r, rep_w})
        low = 3
        for fd in keep:
            if fd >= low:
                os.closerange(low, fd)
                low = fd + 1
        os.closerange(low, 1 << 16)
        ppid = os.getppid()
        lock = self.lock
        client = self._client
        assert client is not None
        fence = lock.fence or 0
        value = lock.value
        confirmed = int(lock.valid_until * 1e9)
        period = lock.ttl / 3
        next_at = time.monotonic() + period
        state = OK
        while state == OK:
            asked = False
            wait = max(0.0, next_at - time.monotonic())
            ready = _readable(ctl_r, wait)
            if ready:
                data = os.read(ctl_r, 64)
                if not data or b"q" in data:
                    break  # the parent died (EOF), or the run ended
                asked = True
            if os.getppid() != ppid:
                break  # the parent died (re-parented before we saw EOF)
            if _parent_stopped(ppid) and not asked:
                next_at = time.monotonic() + STOPPED_POLL  # frozen: let its lease run out
                continue
            started = time.monotonic_ns()
            try:
                code, got = (int(x) for x in client.evalsha(*lock._renew_call(value, fence)))
            except redis.exceptions.NoScriptError:
                code, got = (int(x) for x in client.eval(*lock._renew_call(value, fence, source=True)))
            except redis.RedisError:
                code = -1  # try again at the next round; the TTL leaves two more
                got = fence
            if code == 2:
                fence = got
                value = lock._value_for(fence)
            if code > 0:
                confirmed = started + int(lock.ttl * 1e9)
            elif code == 0:
                state = LOST
            self._write(fence, confirmed, state)
            next_at = time.monotonic() + period
            if asked:
                os.write(rep_w, b".")
        self._write(fence, confirmed, LOST if state == LOST else GONE)
        with contextlib.suppress(OSError):
            os.write(rep_w, b"Q")  # never renews again: the run may release the lock now
