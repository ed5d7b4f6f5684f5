"""A backup renewer process per pool child, so that a step holding the GIL keeps its lease.

The renewal thread of :mod:`.lock` stays the primary renewer, unchanged.  It cannot run while a
step holds the GIL (a C call that never releases it, such as a catastrophic regular expression or
a ``ctypes.PyDLL`` call): the lease would expire and another run could start.  So each Celery pool
child forks, when it starts (``worker_process_init``, single-threaded then), one small process
that shares a few *slots* of memory with it:

- the run publishes its lock in a slot when the run starts (generation, key, value, fence, TTL)
  and clears the slot when it ends; every renewal that Redis confirmed (thread or step boundary)
  stamps "confirmed until" there;
- the backup looks at the slots every ``ttl / 6`` (at most every second).  When a slot's lease was
  last confirmed more than ``ttl / 2`` ago, by either renewer, it runs the same renewal script in
  *extend-only* mode (``lua/renew.lua``: extend if the key still holds exactly this value; never
  take a key, never a new fence) and stamps its own confirmation, which the run's lease check
  between steps accepts like the thread's (:meth:`.lock.WorkflowLock.check`).  The hot path of a
  run gains no Redis round trip: only memory writes, and reads when the thread is late.

It never renews:

- a lock whose slot was cleared or republished (the generation changed) -- and since it only
  extends a key that still holds the run's exact value, a renewal in flight when the run released
  its lock, or after another run took it, changes nothing;
- for a *stopped* pool child (``SIGSTOP``, a debugger: state ``T``/``t`` in ``/proc/<pid>/stat``):
  a frozen run must still lose its lease and be recorded ``lock_lost``;
- after its pool child died: ``PR_SET_PDEATHSIG`` kills it with the child (``kill -9``, the OOM
  killer, Celery's hard time limit), and it checks its parent pid at every look as well;
- a lock Redis did not confirm once (taken, or vanished): the thread decides what that means.

The process is ``woow-renewer`` in ``ps``/``/proc/<pid>/comm``.  It is forked from the pool child
with everything made before the fork, closes every inherited descriptor (the pool's pipes must
close when the child dies), ignores the signals a whole process group or cgroup gets (TERM, INT,
HUP, QUIT, USR1, USR2: it lives exactly as long as its pool child, which may still be finishing a
run in a warm shutdown), never logs and ends with ``os._exit``.  A pool child that exits normally
kills and reaps it (``worker_process_shutdown``).  Linux only (``/proc``, ``prctl``); elsewhere
the thread renews alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import mmap
import os
import select
import signal
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from ..redis_store import make_redis

if TYPE_CHECKING:
    from celery import Celery

    from ..settings import Settings

log = logging.getLogger("woow.lock")

PROCESS_NAME = b"woow-renewer"
SLOTS = 8  # locks one process keeps at once (a prefork child runs one; the rest renew by thread)
BLOB = 1024  # bytes for the key, fence key, value and holder of one lock
MAX_POLL = 1.0  # seconds between looks of the backup at most (also at idle: the parent pid check)
MIN_POLL = 0.05
STALE = 0.5  # the backup renews once the last confirmation is older than this share of the TTL
_SIGNALS = {  # the backup's signal handling (inherited handlers are the pool child's Python code)
    **dict.fromkeys(("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"), signal.SIG_IGN),
    **dict.fromkeys(("SIGALRM", "SIGCHLD"), signal.SIG_DFL),
}
_PR_SET_PDEATHSIG, _PR_SET_NAME = 1, 15

# one slot: the child's part (seq, generation, ttl ms, confirmed until ns, blob length, blob) and
# the backup's part (seq, generation, confirmed until ns); each part has one writer, its seq is odd
# while it is being written (a reader retries)
_CHILD = struct.Struct("=qqqqq")
_BACKUP = struct.Struct("=qqq")
_CHILD_AT, _BLOB_AT = 0, _CHILD.size
_BACKUP_AT = _BLOB_AT + BLOB
SLOT_SIZE = _BACKUP_AT + _BACKUP.size


def _write(shm: mmap.mmap, at: int, layout: struct.Struct, *fields: int, blob: bytes | None = None) -> None:
    seq = struct.unpack_from("=q", shm, at)[0]
    struct.pack_into("=q", shm, at, seq + 1)  # odd: being written
    if blob is not None:
        shm[at + layout.size : at + layout.size + len(blob)] = blob
    layout.pack_into(shm, at, seq + 1, *fields)
    struct.pack_into("=q", shm, at, seq + 2)


def _read(
    shm: mmap.mmap, at: int, layout: struct.Struct, blob: int = 0, tries: int = 100
) -> tuple[tuple[int, ...], bytes] | None:
    """A consistent copy of one part; ``None`` if its writer stays in the middle of a write (it
    was stopped there: the reader must not wait for it)."""
    for _ in range(tries):
        fields = layout.unpack_from(shm, at)
        data = bytes(shm[at + layout.size : at + layout.size + blob]) if blob else b""
        if fields[0] % 2 == 0 and struct.unpack_from("=q", shm, at)[0] == fields[0]:
            return fields, data
        time.sleep(0)
    return None


class Slot:
    """One lock's place in the memory shared with the backup (used by :class:`.lock.WorkflowLock`)."""

    def __init__(self, backup: Backup, index: int) -> None:
        self.backup = backup
        self.at = index * SLOT_SIZE
        self.gen = 0  # generation of what this slot holds now (0: nothing)
        self.freed = False  # given back: this handle never writes again (the place may be reused)

    def publish(self, key: str, fence_key: str, value: str, fence: int, ttl_ms: int, until: float) -> bool:
        """Hand a lock to the backup (again, after a re-take: a new generation); ``False`` if it
        does not fit or the backup is gone (the thread renews alone)."""
        blob = json.dumps([key, fence_key, value, fence]).encode()
        if len(blob) > BLOB or not self.backup.alive():
            self.clear()
            return False
        with self.backup.guard:
            if self.freed:
                return False
            self.gen = self.backup.next_gen()
            fields = (self.gen, ttl_ms, _ns(until), len(blob))
            _write(self.backup.shm, self.at + _CHILD_AT, _CHILD, *fields, blob=blob)
        if ttl_ms * STALE < 2000 * MAX_POLL:  # else its next look comes well before ttl/2 anyway
            self.backup.wake()
        return True

    def stamp(self, gen: int, until: float) -> None:
        """A renewal of generation ``gen`` confirmed the lease up to ``until`` (monotonic s)."""
        with self.backup.guard:
            if gen != self.gen or gen == 0 or self.freed:
                return
            shm = self.backup.shm
            _, _, ttl_ms, known, length = _CHILD.unpack_from(shm, self.at + _CHILD_AT)  # its only writer
            if _ns(until) > known:
                _write(shm, self.at + _CHILD_AT, _CHILD, gen, ttl_ms, _ns(until), length)

    def confirmed_until(self, gen: int) -> float:
        """What the backup confirmed for generation ``gen`` (monotonic s; 0 for nothing)."""
        found = _read(self.backup.shm, self.at + _BACKUP_AT, _BACKUP)
        if found is None or not gen:
            return 0.0
        _, got, until = found[0]
        return until / 1e9 if got == gen else 0.0

    def clear(self) -> None:
        """The run ended: the backup never renews what this slot held again."""
        with self.backup.guard:
            if self.gen and not self.freed:
                _write(self.backup.shm, self.at + _CHILD_AT, _CHILD, 0, 0, 0, 0)
            self.gen = 0

    def free(self) -> None:
        """Clear the slot and give its place back (a renewal still finishing cannot write to it)."""
        self.clear()
        with self.backup.guard:
            if not self.freed:
                self.freed = True
                self.backup._free.append(self.at // SLOT_SIZE)


@dataclass
class Backup:
    """This process's handle on its backup renewer."""

    pid: int
    owner: int  # the pool child (this process)
    redis_url: str
    shm: mmap.mmap
    wake_fd: int  # a byte written here makes the backup look at once (non-blocking)
    guard: threading.Lock
    _free: list[int]
    _gen: int = 0
    _dead: bool = False

    def next_gen(self) -> int:
        self._gen += 1
        return self._gen

    def wake(self) -> None:
        """Make the backup look at its slots now (a new lock may be due in ttl/2, before its next look)."""
        with contextlib.suppress(OSError):  # full (the backup is stopped): it looks when it resumes
            os.write(self.wake_fd, b".")

    def alive(self) -> bool:
        if self._dead:
            return False
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not ours to wait for (SIGCHLD ignored: the kernel reaps it)
            done = self.pid if _state(self.pid) in (None, "Z", "X") else 0
        if done:
            self._dead = True
            log.warning("lock backup renewer %s is gone; the renewal thread renews alone", self.pid)
        return not self._dead

    def take(self) -> Slot | None:
        with self.guard:
            if not self._free:
                return None
            return Slot(self, self._free.pop())


_backups: dict[tuple[int, str], Backup] = {}
_backups_guard = threading.Lock()


def backup_for(redis_url: str) -> Backup | None:
    """The backup renewer this process started for ``redis_url``, if any."""
    return _backups.get((os.getpid(), redis_url))


def start_backup(redis_url: str) -> Backup | None:
    """Fork this process's backup renewer for locks on ``redis_url`` (once per process).

    Call it while the process has a single thread (a forked process gets only the calling thread:
    a lock another thread holds would stay locked in it); the pool child's ``worker_process_init``
    is such a moment.  ``None`` where it cannot run (not Linux, or the fork failed).
    """
    if not sys.platform.startswith("linux"):
        return None
    from .lock import _script

    with _backups_guard:
        found = backup_for(redis_url)
        if found is not None:
            return found
        shm = mmap.mmap(-1, SLOTS * SLOT_SIZE)  # anonymous and shared with the forked process
        client = make_redis(redis_url)  # made before the fork; it connects in the backup
        text, sha = _script("renew")
        owner = os.getpid()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(wake_r)
            os.close(wake_w)
            log.warning("lock backup renewer could not be started (%s); the renewal thread renews alone", exc)
            return None
        if pid == 0:  # pragma: no cover - runs in the backup (covered by the worker tests)
            code = 1
            try:
                os.close(wake_w)
                _main(owner, wake_r, shm, client, text, sha)
                code = 0
            finally:
                os._exit(code)
        os.close(wake_r)
        found = _backups[(owner, redis_url)] = Backup(
            pid=pid,
            owner=owner,
            redis_url=redis_url,
            shm=shm,
            wake_fd=wake_w,
            guard=threading.Lock(),
            _free=list(range(SLOTS)),
        )
        return found


def stop_backups() -> None:
    """End and reap this process's backup renewers (a pool child that exits normally: recycled, warm
    shutdown), so none is left a zombie under an init that does not reap (a container's PID 1)."""
    pid = os.getpid()
    with _backups_guard:
        mine = [key for key in _backups if key[0] == pid]
        for key in mine:
            found = _backups.pop(key)
            with contextlib.suppress(OSError):
                os.close(found.wake_fd)
            with contextlib.suppress(OSError):
                os.kill(found.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(found.pid, 0)


_installed: dict[str, Settings] = {}


def install(app: Celery, settings: Settings) -> None:
    """Start a backup renewer in every pool child of a worker of ``app``, and end it when the child
    exits normally (once per process: the first app's settings win)."""
    from celery import signals

    if _installed.setdefault("settings", settings) is not settings:
        return

    def _on_process_init(**_: Any) -> None:
        start_backup(_installed["settings"].redis_url)

    def _on_process_shutdown(**_: Any) -> None:
        stop_backups()

    signals.worker_process_init.connect(_on_process_init, weak=False, dispatch_uid="woow-lock-backup")
    signals.worker_process_shutdown.connect(_on_process_shutdown, weak=False, dispatch_uid="woow-lock-backup-end")


# -- the backup process -----------------------------------------------------------------------------


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _state(pid: int) -> str | None:
    """The state letter of ``pid`` in ``/proc/<pid>/stat`` (``R``, ``S``, ``T``...); ``None`` if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def stopped(pid: int) -> bool:
    """Is ``pid`` stopped (SIGSTOP, a debugger)?"""
    return _state(pid) in ("T", "t")


class _Renewals:
    """The backup's view of the slots: what it confirmed, and what Redis refused."""

    def __init__(self, owner: int, shm: mmap.mmap, client: redis.Redis, text: str, sha: str) -> None:
        self.owner, self.shm, self.client, self.text, self.sha = owner, shm, client, text, sha
        self.given_up: dict[int, int] = {}  # slot -> generation Redis did not confirm (never tried again)
        self.mine: dict[int, tuple[int, int]] = {}  # slot -> (generation, confirmed until ns)

    def look(self) -> float:
        """Renew every slot whose last confirmation is older than ``ttl * STALE``; the seconds until
        the next look."""
        wait = MAX_POLL
        for index in range(SLOTS):
            with contextlib.suppress(Exception):  # one odd slot never stops the others, nor the process
                wait = min(wait, self._slot(index))
        return wait

    def _slot(self, index: int) -> float:
        at = index * SLOT_SIZE
        found = _read(self.shm, at + _CHILD_AT, _CHILD, BLOB)
        if found is None:
            return MAX_POLL  # the pool child is stopped in the middle of a write
        (_, gen, ttl_ms, thread_until, length), blob = found
        if gen == 0 or self.given_up.get(index) == gen:
            return MAX_POLL
        ttl_ns = ttl_ms * 1_000_000
        own = self.mine.get(index)
        last = max(thread_until, own[1] if own and own[0] == gen else 0)
        if time.monotonic_ns() < last - int(ttl_ns * STALE) or stopped(self.owner):
            return ttl_ms / 6000
        key, fence_key, value, fence = json.loads(blob[:length])
        started = time.monotonic_ns()
        args = [value, ttl_ms, fence, "", "", int(time.time() * 1000), 0, "extend-only"]
        try:
            try:
                code = int(self.client.evalsha(self.sha, 2, key, fence_key, *args)[0])
            except redis.exceptions.NoScriptError:
                code = int(self.client.eval(self.text, 2, key, fence_key, *args)[0])
        except redis.RedisError:
            return ttl_ms / 6000  # try again at the next look
        if code != 1:  # taken, or vanished: never again for this generation (the thread decides)
            self.given_up[index] = gen
            return MAX_POLL
        self.mine[index] = (gen, started + ttl_ns)
        _write(self.shm, at + _BACKUP_AT, _BACKUP, gen, started + ttl_ns)
        return ttl_ms / 6000


def _main(owner: int, wake: int, shm: mmap.mmap, client: redis.Redis, text: str, sha: str) -> None:  # pragma: no cover
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    libc.prctl(_PR_SET_NAME, ctypes.c_char_p(PROCESS_NAME), 0, 0, 0)
    if os.getppid() != owner:
        return  # the pool child died before the death signal was set up
    gc.disable()  # objects inherited from the pool child are never collected here
    # it lives exactly as long as its pool child: a TERM or INT sent to the whole group or cgroup
    # (Ctrl-C, systemd) must not end it while the child still finishes its run in a warm shutdown
    for name, action in _SIGNALS.items():
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.signal(getattr(signal, name), action)
    if wake != 3:
        os.dup2(wake, 3)
    os.closerange(4, max(4, os.sysconf("SC_OPEN_MAX")))  # the pool's pipes must close when the pool child dies
    waker = select.poll()
    waker.register(3, select.POLLIN)
    renewals = _Renewals(owner, shm, client, text, sha)
    while os.getppid() == owner:
        wait = renewals.look()
        if waker.poll(int(max(MIN_POLL, wait) * 1000)):
            try:
                if not os.read(3, 4096):
                    return  # EOF: the pool child is gone
            except BlockingIOError:
                pass
