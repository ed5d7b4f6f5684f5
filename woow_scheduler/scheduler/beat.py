"""Our Celery beat scheduler on RedBeat: nominal fire times, misfires, HA lock, bookkeeping.

Registered in one visible place: :class:`WoowScheduler` (``celery beat -S
woow_scheduler.beat:WoowScheduler``, also the app's ``beat_scheduler``) sets ``Entry`` to
:class:`WoowSchedulerEntry`, whose codec knows our schedule type.  Nothing of RedBeat or Celery is
patched.

How a pass (``tick``) works, when this process holds the beat lock:

1. fetch the keys of every entry due by now (one ``ZRANGEBYSCORE``);
2. per chunk of ``beat_dispatch_chunk`` keys: make sure the lock is still ours (extending it when
   a quarter of its lifetime has passed, so a long burst never loses it); take the entries whose
   messages were prepared ahead and are unchanged since (one script call,
   :file:`lua/entries_unchanged.lua`); load the other entries' definitions and metas in one
   pipeline and let each schedule plan its fires at ``now`` (nominal times, misfire policy) and
   build one ``execute_workflow`` per fire with its ``scheduled_for``; write the chunk's messages
   (on a Redis broker one pipelined write, elsewhere one kombu publish batch), then record every
   entry's new position, score and fire record with one script call for the chunk
   (:file:`lua/entries_fired.lua`, atomic per entry); in a pass of many chunks (a burst) the next
   chunk's read and each chunk's fired write go to Redis without waiting for their replies
   (:class:`_Inflight`), which are all read before the pass ends;
3. prepare the next due second (:meth:`WoowScheduler._prepare_next`: its messages built and
   encoded ahead, in slices between passes, never published before that second);
4. sleep until the earliest score (whole epoch seconds) or until it is time to prepare it, at most
   ``beat_max_loop_interval``.

A fire is published before its entry advances: a crash in between re-publishes the same
``(trigger_id, scheduled_for)``, which the worker refuses to run twice.

A background thread does everything that touches PostgreSQL, so the hot path never waits for it:
heartbeats (``scheduler_instances``), and, while leader, draining fire bookkeeping, incremental
reconciles every ``reconcile_interval`` and full ones on becoming leader and every
``full_reconcile_interval``.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
from celery import Celery
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, get_redis
from redis.exceptions import LockError as RedisLockError
from sqlalchemy import delete

from ..db import Database, SchedulerInstance
from ..enums import InstanceKind
from ..keys import Keys
from ..lua import lua_source
from ..messaging.app import create_app
from ..messaging.broker import Prepared, can_prepare, capture, send_prepared
from ..messaging.payload import fire_kwargs
from ..messaging.publish import MARKS, FireSender, FireTemplate, plain
from ..metrics import BeatMetrics
from ..redis_store import pack_command
from ..settings import Settings, load_settings
from ..triggers import jitter_offset
from .bookkeeping import drain_fired, fired_record
from .codec import decode_meta, dumps, encode_meta, loads
from .reaper import reap_lost_runs, resend_stale
from .schedule import MAX_FIRES_PER_PASS, FirePlan, WoowTriggerSchedule, iso_utc
from .sweeper import sweep_fires
from .sync import Reconciler, incremental_since

log = logging.getLogger("woow.beat")

SCHEDULER_PATH = "woow_scheduler.beat:WoowScheduler"
_lua = functools.cache(lua_source)  # a script's text, read once (sent with EVAL by _Inflight)
FIRED_STREAM_MAXLEN = 1_000_000
_DECODE_CACHE_MAX = 200_000
# commands buffered before kombu flushes a publish batch on its own: above any chunk, so the one flush
# at the end of _publish_all (after the last lock check) is the only one
_BATCH_MAX_COMMANDS = 1_000_000
#: preparation of the next second's messages stops this long before that second starts
PREPARE_MARGIN = 0.02
#: one pass prepares for at most this long, then returns to the loop (due fires never wait longer)
PREPARE_SLICE = 0.1
#: a second with many fires is prepared from at most this long ahead ...
PREPARE_HORIZON = 120.0
#: ... and its lead is its fire count times the measured cost of preparing one, times this
PREPARE_SAFETY = 2.0
#: beat wakes this long after a due second starts (a sleep never ends early: a margin for the clock
#: read that follows, not for the sleep)
WAKE_AFTER = 0.0002
#: beat runs Python's full garbage collection itself (see WoowScheduler._collect_garbage): every
#: this many seconds, when its next pass is at least GC_GAP seconds away, and after GC_FULL_MAX at the latest
GC_FULL_EVERY = 20.0
GC_GAP = 0.3
GC_FULL_MAX = 120.0
GC_HOT = 10.0  # ... only while beat sent fires within this many seconds (an idle beat leaves it to Python)
GC_NEVER = 1 << 30  # the oldest generation's threshold while beat collects it itself
_GC_OLDEST = gc.get_threshold()[2]  # the interpreter's own, restored afterwards
#: the maintenance thread starts a step only when beat's next pass is at least this far (seconds) ...
QUIET_GAP = 0.15
#: ... or after waiting this long for such a gap (it is never starved)
QUIET_LIMIT = 1.0
#: ... and not at all once beat's next pass is this late (beat stopped ticking: closing, or stopped)
QUIET_OVERDUE = 0.05
#: rows per batch of the maintenance thread's reconciles (it waits for a gap before each batch)
MAINTENANCE_BATCH = 250


class WoowSchedulerEntry(RedBeatSchedulerEntry):  # type: ignore[misc]
    """RedBeat's entry with our codec; for our schedules ``last_run_at`` is the last NOMINAL fire."""

    @staticmethod
    def decode_definition(definition: str) -> Any:
        return loads(definition)

    @property
    def due_at(self) -> datetime | None:
        if isinstance(self.schedule, WoowTriggerSchedule):
            return self.schedule.next_fire_time(self.last_run_at)  # nominal; may lie in the past
        due: datetime | None = super().due_at
        return due

    def save(self) -> WoowSchedulerEntry:
        """As RedBeat's ``save`` (meta only if missing), with our encoder and a nominal score."""
        definition = {
            "name": self.name,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "schedule": self.schedule,
            "enabled": self.enabled,
        }
        client = get_redis(self.app)
        with client.pipeline() as pipe:
            pipe.hset(self.key, "definition", dumps(definition))
            pipe.hsetnx(self.key, "meta", encode_meta(self.last_run_at, self.total_run_count or 0))
            pipe.zadd(self.app.redbeat_conf.schedule_key, {self.key: self.score})
            pipe.execute()
        return self

    def _next_instance(self, last_run_at: datetime | None = None, only_update_last_run_at: bool = False) -> Any:
        if isinstance(self.schedule, WoowTriggerSchedule) and last_run_at is None:
            last_run_at = self.schedule.next_fire_time(self.last_run_at) or self.last_run_at
        return super()._next_instance(last_run_at=last_run_at, only_update_last_run_at=only_update_last_run_at)

    __next__ = next = _next_instance


class BeatLock:
    """The beat lock (RedBeat's key under our prefix), held by at most one beat.

    ``keep()`` extends it once a quarter of its lifetime has passed since the last extension and
    answers whether this process may still fire.  A standby acquires it only after the holder
    stopped extending it for a whole lifetime, and the holder stops firing well before that.
    """

    def __init__(self, client: redis.Redis, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self._lock = client.lock(name, timeout=timeout, blocking=False, thread_local=False)
        self.held = False
        self._last_ok = 0.0

    def try_acquire(self) -> bool:
        if self._lock.acquire(blocking=False):
            self.held = True
            self._last_ok = time.monotonic()
        return self.held

    def keep(self, *, every: float | None = None) -> bool:
        if not self.held:
            return False
        since = time.monotonic() - self._last_ok
        if since < (self.timeout / 4 if every is None else every):
            return True
        try:
            self._lock.reacquire()
        except RedisLockError:
            log.warning("beat: lost the beat lock (held by another beat now); standing by")
            self.held = False
            return False
        except redis.RedisError as exc:
            if since > self.timeout * 0.75:
                log.warning("beat: cannot extend the beat lock (%s); standing by", exc)
                self.held = False
            return False
        self._last_ok = time.monotonic()
        return True

    def age(self) -> float:
        """Seconds since the lock was last taken or extended."""
        return time.monotonic() - self._last_ok

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self._lock.release()
            except (RedisLockError, redis.RedisError) as exc:
                log.info("beat: lock release: %s", exc)


class _LockLost(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Decoded:
    definition: dict[str, Any]
    schedule: WoowTriggerSchedule | None
    sha: str


@dataclass(frozen=True, slots=True)
class _PreparedEntry:
    """One entry's fires, planned at the start of the second they are due and encoded ahead."""

    decoded: _Decoded
    meta: str  # the meta the plan started from ('' = none): published only while it is still stored
    count: int
    plan: FirePlan
    messages: tuple[Prepared, ...]  # one per fire of the plan, in order
    write: tuple[str, int, str]  # the fired write once they all went out: new meta, score, record

    def usable_at(self, now_s: int) -> bool:
        """Whether planning again at ``now_s`` would give the same fires (beat woke later than
        the second it prepared for: a fire that became due meanwhile or a misfire needs a new plan)."""
        plan = self.plan
        sched = self.decoded.schedule
        assert sched is not None
        if len(plan.fires) >= MAX_FIRES_PER_PASS or plan.fires[-1].timestamp() > now_s:
            return False  # (never a fire before its second, whatever moved the entry's score)
        if plan.next_fire is not None and plan.next_fire.timestamp() <= now_s:
            return False
        return now_s - plan.fires[0].timestamp() <= float(sched.spec.misfire_threshold)


_TemplateFill = tuple[FireTemplate, tuple[str, str, str, str]]  # a template and the values that fill it


def _pack(args: tuple[Any, ...]) -> bytes:
    """One of beat's in-flight commands in RESP (:func:`~woow_scheduler.redis_store.pack_command`);
    beat sends only ``str``, ``bytes`` and ``int`` arguments this way and refuses anything else."""
    packed = pack_command(*args)
    if packed is None:
        kinds = sorted({type(a).__name__ for a in args if type(a) not in (str, bytes, int)})
        raise TypeError(f"beat packs str, bytes and int arguments, not {', '.join(kinds)}")
    return packed


class _Inflight:
    """Commands written to one Redis connection of their own whose replies are read later, in the
    order sent: a burst's next chunk is read, and each chunk's fired write runs, on the Redis
    server while beat decodes and builds in Python (see :meth:`WoowScheduler._dispatch_due`).

    :meth:`take` returns a command's reply; replies before it (fired writes) are read and dropped,
    an error among them is raised there.  :meth:`close` reads every reply still due (so the pass
    ends with all its writes done, as with a synchronous write) and gives the connection back; on
    any error the connection is dropped, as redis-py does for a failed command."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn: Any = self._pool.get_connection()
        self._sent = 0
        self._read = 0

    def send(self, *args: Any) -> int:
        try:
            self._conn.send_packed_command([_pack(args)])
        except BaseException:
            self._drop()
            raise
        self._sent += 1
        return self._sent

    def take(self, ticket: int) -> Any:
        reply: Any = None
        try:
            while self._read < ticket:
                reply = self._conn.read_response()
                self._read += 1
        except BaseException:
            self._drop()
            raise
        return reply

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            self.take(self._sent)
        finally:
            if self._conn is not None:
                self._pool.release(self._conn)
                self._conn = None

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._pool.release(self._conn)
            self._conn = None
            self._read = self._sent  # (nothing more to read on a dropped connection)


class WoowScheduler(RedBeatScheduler):  # type: ignore[misc]
    Entry = WoowSchedulerEntry
    #: run the PostgreSQL side (heartbeat, bookkeeping, reconciles) in a background thread
    run_maintenance = True
    #: seconds before a due second at which beat wakes to build and encode that second's messages
    #: (0: no preparation, every message is built at the due instant); a second with more fires
    #: than fit in that time starts earlier (see _prepare_next)
    prepare_ahead = 0.9
    #: at most this many fires are held prepared (about 2 KB each: see docs/performance.md)
    prepare_max = 100_000
    #: run the full garbage collection between passes while leading (see _collect_garbage)
    manage_gc = True

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        settings = app.conf.get("woow_settings")
        self.settings: Settings = settings if isinstance(settings, Settings) else load_settings()
        self.keys = Keys(self.settings.key_prefix)
        self.instance_id = f"beat-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.chunk_size = self.settings.beat_dispatch_chunk
        self._dispatch_lock: BeatLock | None = None
        self._declared: set[Any] | None = None  # see _publish_all
        self._capturing = False  # messages are being captured (prepared), not sent: see _publish
        self._sender: FireSender | None = None
        self._sink: list[Prepared] | None = None  # while capturing: where messages go (see _publish)
        #: fire messages with the per-fire values open, by what they share (see _fire_template)
        self._templates: dict[tuple[Any, ...], FireTemplate | None] = {}
        self._template_text: dict[str, str] = {}  # the templates' literal pieces, shared between them
        self._decoded: dict[str, _Decoded] = {}
        self._maintenance: _Maintenance | None = None
        self._beat_lock: BeatLock | None = None
        self.leader_since: datetime | None = None
        self.last_tick: datetime | None = None
        self._last_state_write = 0.0
        self._script: Any = None
        self._unchanged_script: Any = None
        self._many_script: Any = None
        self._read_script: Any = None
        #: the messages of one upcoming second, by entry key (see _prepare_next)
        self._prepared: dict[str, _PreparedEntry] = {}
        self._prepared_second = 0  # the second being prepared (or prepared); 0 = none
        self._prepare_todo: list[str] = []  # its keys not prepared yet
        self._prepare_cost = 300e-6  # seconds per prepared fire, measured as it goes
        self._prepare_wake = 0.0  # epoch time at which preparation of the next due second starts
        self._prechecked: dict[str, bool] = {}  # prepared entries checked unchanged with the due keys' read
        self._ahead: tuple[list[str], int] | None = None  # the next chunk's read, sent ahead (see _process_chunk)
        #: fires published from messages prepared ahead (the benchmarks report it)
        self.fires_prepared = 0
        #: clear while a pass publishes; the maintenance thread waits for it (bounded)
        self.idle = threading.Event()
        self.idle.set()
        self._busy = False  # inside tick (see wait_quiet)
        self._closing = False
        self._last_fired = float("-inf")  # monotonic time of the last pass that had fires due
        self._gc_managed = False  # the automatic full collection is off (see _collect_garbage)
        self._gc_last_full = 0.0
        self._next_pass = 0.0  # epoch time at which the next tick is due
        #: Prometheus series (served only with WOOW_METRICS_PORT; see metrics.py)
        self.metrics = BeatMetrics()
        self.metrics.leader.set_function(lambda: 1.0 if self.is_leader else 0.0)
        self.metrics.lock_age.set_function(self._lock_age)
        kwargs.setdefault("lock_timeout", self.settings.beat_lock_timeout)
        super().__init__(app, *args, **kwargs)
        # RedBeat's beat_init handler blocks in lock.acquire(); we take the lock in tick() instead,
        # so a standby keeps heartbeating.  With lock_key unset that handler stands aside.
        self.lock_name: str = str(self.lock_key)
        self.lock_key: str | None = None

    # -- the pass ---------------------------------------------------------------------------
    def tick(self, min: Any = min, **kwargs: Any) -> float:
        self._busy = True
        wait = float(self.max_interval)
        try:
            wait = self._collect_garbage(self._tick())
            return wait
        finally:
            self._next_pass = time.time() + wait
            self._busy = False

    def _collect_garbage(self, wait: float) -> float:
        """Run Python's full (oldest generation) garbage collection here, between passes, instead of
        wherever the interpreter's thresholds trigger it: with 10,000 entries it scans a few hundred
        thousand long-lived objects (decoded entries, templates, prepared messages) for 80-130 ms,
        every few seconds, and a fire whose pass it lands in is that late.  While this beat leads
        and sent fires in the last ``GC_HOT`` seconds, the automatic full collection is off
        (younger generations stay automatic, a few ms at most); once the interpreter would have
        wanted one (as many middle-generation collections as its threshold), a full one runs here,
        at most every ``GC_FULL_EVERY`` seconds, when the next pass is at least ``GC_GAP`` away, or
        after ``GC_FULL_MAX`` seconds in any case.  Returns what is left of ``wait``.  The
        interpreter's threshold is restored by :meth:`close`, on losing the lock, or once idle.
        """
        if not self.manage_gc:
            return wait
        now = time.monotonic()
        if not self.is_leader or now - self._last_fired > GC_HOT:
            self._restore_gc()  # (a beat without fires to send keeps the interpreter's own collection)
            return wait
        self._manage_gc(now)
        since = now - self._gc_last_full
        if gc.get_count()[2] < _GC_OLDEST:
            return wait  # (as the interpreter: not before that many younger collections; an idle beat never)
        if (since >= GC_FULL_EVERY and wait >= GC_GAP) or since >= GC_FULL_MAX:
            gc.collect()
            self._gc_last_full = time.monotonic()
            wait = max(0.0, wait - (self._gc_last_full - now))
        return wait

    def _manage_gc(self, now: float) -> None:
        """Turn the automatic full collection off (see :meth:`_collect_garbage`)."""
        if not self._gc_managed:
            self._gc_managed = True
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, GC_NEVER)
            self._gc_last_full = now

    def _restore_gc(self) -> None:
        if self._gc_managed:
            self._gc_managed = False
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, _GC_OLDEST)

    def wait_quiet(self, need: float = QUIET_GAP, limit: float = QUIET_LIMIT) -> None:
        """Block the calling thread (the maintenance thread) until this beat is between passes and
        its next pass is at least ``need`` seconds away, for at most ``limit`` seconds.

        The maintenance thread's work (reconciles, bookkeeping, sweeps) is Python that takes the GIL
        from the pass that publishes the fires of a second; started in a gap between passes, it
        is done before the next one (a reconcile waits again between batches of
        ``MAINTENANCE_BATCH``).  ``limit`` keeps it from ever being starved.
        """
        end = time.monotonic() + limit
        while self.is_leader and not self._closing:
            left = end - time.monotonic()
            if left <= 0:
                return
            if self._busy:
                time.sleep(min(0.002, left))
                continue
            gap = self._next_pass - time.time()
            if gap >= need or gap < -QUIET_OVERDUE:
                return  # far enough, or beat is not ticking as it planned (stopping, stopped)
            time.sleep(min(max(gap, 0.0) + 0.002, left))  # past the next pass's start, then look again

    def _tick(self) -> float:
        self._start_maintenance()
        client = get_redis(self.app)
        self._serve_metrics(client)
        try:
            lock = self._lock(client)
            if not lock.held:
                asked = time.monotonic()
                if not lock.try_acquire():
                    return float(self.max_interval)
                self.leader_since = datetime.now(UTC)
                log.info("beat: acquired the beat lock %s; this beat fires now", self.lock_name)
                if self._maintenance is not None:
                    self._maintenance.request_full(asked)
            if not lock.keep():
                return float(self.max_interval)
            self.last_tick = datetime.now(UTC)
            failures = self._dispatch_due(client, lock)
            self._write_state(client)
            self._prepare_next(client)
            return self._sleep_time(client, failures)
        except _LockLost:
            return float(self.max_interval)
        except redis.RedisError as exc:
            log.error("beat: redis error in tick: %s", exc)
            return float(self.max_interval)

    def _lock(self, client: redis.Redis) -> BeatLock:
        if self._beat_lock is None:
            self._beat_lock = BeatLock(client, self.lock_name, float(self.lock_timeout))
        return self._beat_lock

    def _dispatch_due(self, client: redis.Redis, lock: BeatLock) -> int:
        now_ts = int(time.time())
        pre = self._precheck_candidates(now_ts)
        if pre:
            # a second whose fires were all prepared (the usual one): the due keys and the unchanged
            # check of the prepared entries in one round trip instead of two
            script = self._unchanged(client)
            with client.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(self.keys.redbeat_schedule, 0, now_ts)
                script(keys=[k for k, _ in pre], args=_unchanged_args(pre), client=pipe)
                due, flags = pipe.execute()
            self._prechecked = {k: int(ok) == 1 for (k, _), ok in zip(pre, flags, strict=True)}
        else:
            due = cast(list[str], client.zrangebyscore(self.keys.redbeat_schedule, 0, now_ts))
        failures = 0
        if due:
            self._last_fired = time.monotonic()
            if self.manage_gc:
                # from this pass on, not only after it: the first pass of a cold burst decodes and
                # keeps a whole second's entries, which made the interpreter run full collections
                # of a growing heap in the middle of it
                self._manage_gc(self._last_fired)
            self.idle.clear()  # the PostgreSQL thread waits: no GIL contention while fires go out
        self._dispatch_lock = lock  # checked by elapsed time while publishing, not only per chunk
        chunks = [due[i : i + self.chunk_size] for i in range(0, len(due), self.chunk_size)]
        # a pass of many chunks (a burst) keeps the Redis server busy while Python works: the next
        # chunk's entries are read, and each chunk's fired write runs, on a connection of their own
        # whose replies are read when needed; every reply is read before the pass ends
        inflight = _Inflight(client) if len(chunks) > 1 else None
        try:
            ahead: tuple[list[str], int] | None = None
            for n, keys in enumerate(chunks):
                if not lock.keep():
                    raise _LockLost
                failures += self._process_chunk(
                    client, keys, inflight, ahead, chunks[n + 1] if n + 1 < len(chunks) else None
                )
                ahead = self._ahead
        finally:
            if inflight is not None:
                inflight.close()  # every reply read (an error in one raises here), the connection back
            self._ahead = None
            self._dispatch_lock = None
            self._prechecked = {}
            self.idle.set()
        return failures

    def _precheck_candidates(self, now_s: int) -> list[tuple[str, _PreparedEntry]]:
        """The prepared entries to check with the due keys' read: all of them when they are due by
        ``now_s`` and fit in one chunk (a bigger second is checked chunk by chunk, each just before
        its write)."""
        prepared = self._prepared
        if not prepared or len(prepared) > self.chunk_size or self._prepared_second > now_s:
            return []
        return [(k, e) for k, e in prepared.items() if e.usable_at(now_s)]

    def _process_chunk(
        self,
        client: redis.Redis,
        keys: list[str],
        inflight: _Inflight | None = None,
        ahead: tuple[list[str], int] | None = None,
        following: list[str] | None = None,
    ) -> int:
        """One chunk of due ``keys``.  With ``inflight`` (a pass of many chunks), ``ahead`` is this
        chunk's read sent earlier (the keys read, its reply's ticket), the read of the
        ``following`` chunk is sent before this one's work starts (kept in ``self._ahead``), and
        the fired write is sent without waiting for its reply."""
        now = datetime.now(UTC)
        # entries whose messages were prepared ahead and are unchanged since: no read, no plan, no build
        ready = self._take_prepared(client, keys, int(now.timestamp()))
        rest = [k for k in keys if k not in ready] if ready else keys
        if inflight is not None:
            rows = self._rows_ahead(client, inflight, ahead, rest)
            self._ahead = None
            if following:
                prepared = self._prepared
                later = [k for k in following if k not in prepared] if prepared else following
                if later:
                    self._ahead = (later, inflight.send(*self._read_command(later)))
        else:
            rows = self._read_entries(client, rest) if rest else []
        writes: list[tuple[str, list[Any]]] = []
        seen_meta: dict[str, str] = {}  # the entry's meta as read: its fired write is conditional on it
        generic: list[tuple[str, _Decoded, str | None]] = []
        planned: list[tuple[str, _Decoded, int, FirePlan]] = []
        messages: dict[str, tuple[Prepared, ...]] = {}
        for key, entry in ready.items():
            seen_meta[key] = entry.meta
            planned.append((key, entry.decoded, entry.count, entry.plan))
            messages[key] = entry.messages
        for key, (definition, meta) in zip(rest, rows, strict=True):
            if definition is None:
                writes.append((key, []))  # gone: drop it from the schedule
                continue
            decoded = self._decode(key, definition)
            if decoded is None:
                writes.append((key, [_sha(definition), "", -1, "", FIRED_STREAM_MAXLEN]))  # park it
                continue
            if decoded.schedule is None:
                generic.append((key, decoded, meta))
                continue
            last, count = decode_meta(meta)
            seen_meta[key] = meta or ""
            planned.append((key, decoded, count, decoded.schedule.plan(last, now)))

        # publish every fire of the chunk, one after the other (see _publish_all), then record the outcome;
        # fires due in the same second go out in trigger priority order, higher first (Quartz)
        jobs = [(decoded.definition, fire) for _, decoded, _, plan in planned for fire in plan.fires]
        prios = [_priority(d) for _, d, _, plan in planned for _ in plan.fires]
        built: list[Prepared | None] = [
            messages[key][n] if key in messages else None for key, _, _, plan in planned for n in range(len(plan.fires))
        ]
        order = sorted(range(len(jobs)), key=lambda j: (jobs[j][1], -prios[j]))
        sent = self._publish_all([jobs[j] for j in order], [built[j] for j in order])
        outcomes: list[Any] = [None] * len(jobs)
        for j, outcome in zip(order, sent, strict=True):
            outcomes[j] = outcome
        failures = sum(1 for o in outcomes if o is not None)
        kinds = [str(d.schedule.spec.type) if d.schedule else "other" for _, d, _, plan in planned for _ in plan.fires]
        self._count_published(jobs, kinds, outcomes)
        misfired = 0
        i = 0
        for key, decoded, count, plan in planned:
            results = outcomes[i : i + len(plan.fires)]
            i += len(plan.fires)
            ok = next((n for n, r in enumerate(results) if r is not None), len(results))
            sched = decoded.schedule
            assert sched is not None
            if ok < len(plan.fires):
                if not isinstance(results[ok], _LockLost):
                    log.error("beat: publishing %s failed: %s", decoded.definition.get("name"), results[ok])
                if ok == 0:
                    continue  # stays due: retried next pass with the same scheduled_for
                fires = plan.fires[:ok]
                pos: datetime | None = fires[-1]
                nxt = sched.spec.next_fire_time(fires[-1], sched.calendar)
            else:
                fires, pos, nxt = plan.fires, plan.position, plan.next_fire
            if plan.misfired:
                misfired += 1
                self.metrics.misfires.labels(policy=str(sched.misfire_policy)).inc()
                (log.info if misfired <= 20 else log.debug)(
                    "beat: trigger %s misfired (policy %s): firing %s",
                    decoded.definition.get("name"),
                    sched.misfire_policy,
                    [iso_utc(f) for f in fires],
                )
            prep = ready.get(key)
            if prep is not None and fires is prep.plan.fires:  # all went out: written as prepared
                new_meta, score, record = prep.write
            else:
                new_meta, score, record = _fired_write(decoded, count, fires, pos, nxt)
            writes.append((key, [decoded.sha, new_meta, score, record, FIRED_STREAM_MAXLEN, seen_meta[key]]))
        if writes:
            schedule_key, fired_key = self.keys.redbeat_schedule, self.keys.fired
            fired_keys: list[str] = [schedule_key, fired_key]
            fired_args: list[Any] = [FIRED_STREAM_MAXLEN]
            with client.pipeline(transaction=False) as pipe:
                for key, args in writes:
                    if len(args) == 6:  # fired: every such entry of the chunk in one script call
                        sha, new_meta, score, record, _, seen = args
                        fired_keys.append(key)
                        fired_args += (sha, new_meta, score, record, seen)
                    elif args:  # parked
                        self._fired_script(client)(keys=[key, schedule_key, fired_key], args=args, client=pipe)
                    else:
                        pipe.zrem(schedule_key, key)
                if len(fired_keys) > 2:
                    if inflight is not None:  # (its reply is read by the next take, at the latest on close)
                        inflight.send("EVAL", _lua("entries_fired"), len(fired_keys), *fired_keys, *fired_args)
                    else:
                        self._fired_many_script(client)(keys=fired_keys, args=fired_args, client=pipe)
                if len(pipe):
                    pipe.execute()
        if misfired > 20:
            log.info("beat: %d triggers misfired in this pass (policies applied; details at DEBUG)", misfired)
        for key, decoded, meta in generic:
            self._generic_entry(key, decoded, meta)
        return failures

    def _count_published(
        self, jobs: list[tuple[dict[str, Any], datetime]], kinds: list[str], outcomes: list[Exception | None]
    ) -> None:
        # (metrics.published for each fire, grouped: one labelled count per kind and one lateness
        # per fire time instead of a label look-up and a timestamp per fire)
        now = time.time()
        metrics = self.metrics
        kinds_sent: dict[str, int] = {}
        late: dict[datetime, int] = {}
        failed = 0
        for (_, fire), kind, outcome in zip(jobs, kinds, outcomes, strict=True):
            if outcome is None:
                kinds_sent[kind] = kinds_sent.get(kind, 0) + 1
                late[fire] = late.get(fire, 0) + 1
            else:
                failed += 1
        for kind, n in kinds_sent.items():
            metrics.fires_published.labels(trigger_type=kind or "unknown").inc(n)
        for fire, n in late.items():
            lateness = max(0.0, now - fire.timestamp())
            for _ in range(n):
                metrics.publish_lateness.observe(lateness)
        if failed:
            metrics.publish_failures.inc(failed)

    def _lock_age(self) -> float:
        lock = self._beat_lock
        return lock.age() if lock is not None and lock.held else 0.0

    def _publish_all(
        self, jobs: list[tuple[dict[str, Any], datetime]], built: list[Prepared | None] | None = None
    ) -> list[Exception | None]:
        """Publish each ``(definition, fire)`` in order; ``None`` for a success, the exception otherwise.

        ``built[i]``, when given, is job ``i``'s message prepared ahead (see :meth:`_prepare_next`);
        the others are built now, the same way.  On woow's Redis broker transport every message of
        the call goes out in one pipelined write (:func:`~woow_scheduler.messaging.broker.send_prepared`);
        other transports publish through one kombu publish batch (:meth:`_publish_batched`).  The
        lock is checked (by elapsed time, extended when due) before each fire is buffered: once it
        is found lost, the fires buffered while it was held are written, as they would have been
        published one by one, and the rest are left to the new leader (the entry keeps its last
        published fire).  A failed write fails every fire of the call (delivery is uncertain: the
        entries stay due and go out again with the same ``scheduled_for``, which the worker runs once).
        """
        producer = self.producer
        if not can_prepare(producer):
            return self._publish_batched(jobs)
        lock = getattr(self, "_dispatch_lock", None)
        out: list[Exception | None] = []
        ready: list[Prepared] = []
        ahead = 0
        self._declared = set()  # queues declared by an earlier message of this batch
        self._capturing = True
        try:
            with capture(producer) as sink:
                self._sink = sink
                for n, job in enumerate(jobs):
                    if lock is not None and not lock.keep():  # cheap: a clock read until a renewal is due
                        log.warning(
                            "beat: lost the beat lock while publishing; %d fires left to the new leader", len(jobs) - n
                        )
                        out.extend(_LockLost() for _ in jobs[n:])
                        break
                    message = built[n] if built is not None else None
                    if message is not None:
                        ahead += 1
                    else:
                        before = len(sink)
                        error = self._publish_one(job, producer=producer)
                        if error is None and len(sink) != before + 1:
                            error = RuntimeError(f"building the message gave {len(sink) - before} messages")
                        if error is not None:
                            del sink[before:]
                            out.append(error)
                            continue
                        message = sink[-1]
                    ready.append(message)
                    out.append(None)
        finally:
            self._declared = None
            self._capturing = False
            self._sink = None
        try:
            send_prepared(producer, ready)
        except Exception as exc:  # the write failed: none of the batch counts as published
            log.error("beat: publishing a batch of %d fires failed: %s", len(ready), exc)
            failed: list[Exception | None] = [o if o is not None else exc for o in out]
            return failed + [exc] * (len(jobs) - len(out))
        self.fires_prepared += ahead
        return out

    def _publish_batched(self, jobs: list[tuple[dict[str, Any], datetime]]) -> list[Exception | None]:
        """:meth:`_publish_all` on a transport whose messages cannot be prepared: one kombu publish
        batch (``Producer.batch``; transports without batching publish at once)."""
        lock = getattr(self, "_dispatch_lock", None)
        out: list[Exception | None] = []
        producer = self.producer
        self._declared = set()  # queues declared by an earlier message of this batch
        try:
            with producer.batch(max_size=_BATCH_MAX_COMMANDS):
                for n, job in enumerate(jobs):
                    if lock is not None and not lock.keep():  # cheap: a clock read until a renewal is due
                        log.warning(
                            "beat: lost the beat lock while publishing; %d fires left to the new leader", len(jobs) - n
                        )
                        out.extend(_LockLost() for _ in jobs[n:])
                        break
                    out.append(self._publish_one(job, producer=producer))
        except Exception as exc:  # the flush failed: none of the batch counts as published
            log.error("beat: publishing a batch of %d fires failed: %s", len(jobs), exc)
            failed: list[Exception | None] = [o if o is not None else exc for o in out]
            return failed + [exc] * (len(jobs) - len(out))
        finally:
            self._declared = None
        return out

    # -- prepared dispatch ------------------------------------------------------------------------
    def _prepare_next(self, client: redis.Redis) -> None:
        """Build and encode the messages of the fires due at the next due second, ahead of it.

        Preparation starts ``prepare_ahead`` seconds before that second, or earlier for a second
        with many fires (its fire count times the measured cost of preparing one, times
        ``PREPARE_SAFETY``, at most ``PREPARE_HORIZON``), and runs in slices of ``PREPARE_SLICE``
        between passes, so fires due meanwhile go out on time; it stops ``PREPARE_MARGIN``
        before the second starts (what is left is built at the due instant, as usual) and holds
        at most ``prepare_max`` fires.  Nothing is published here: the messages (Celery's and
        kombu's encoding, captured, see ``messaging.broker.capture``) wait for
        :meth:`_process_chunk`, which sends an entry's prepared messages only when the entry still
        holds the definition and meta they were built from (one script call per chunk) and
        planning again at that moment would give the same fires.
        """
        if self.prepare_ahead <= 0 or not self.is_leader or not can_prepare(self.producer):
            self._reset_prepared()  # (on RabbitMQ every message is built at the due instant)
            return
        now = time.time()
        if not self._prepare_todo or self._prepared_second <= now:
            schedule = self.keys.redbeat_schedule
            nxt = client.zrangebyscore(schedule, f"({int(now)}", "+inf", start=0, num=1, withscores=True)
            second = int(nxt[0][1]) if nxt else 0
            if second == 0 or second == self._prepared_second:
                return  # nothing ahead, or that second is prepared (as far as time and memory allowed)
            count = int(client.zcount(self.keys.redbeat_schedule, second, second))
            lead = min(PREPARE_HORIZON, max(self.prepare_ahead, count * self._prepare_cost * PREPARE_SAFETY))
            self._prepare_wake = second - lead
            if now < self._prepare_wake:
                return  # too early: _sleep_time wakes this beat in time
            self._reset_prepared()
            self._prepared_second = second
            self._prepare_todo = cast(list[str], client.zrangebyscore(self.keys.redbeat_schedule, second, second))
        producer = self.producer
        second = self._prepared_second
        at = datetime.fromtimestamp(second, UTC)
        stop = min(now + PREPARE_SLICE, second - PREPARE_MARGIN)
        out = self._prepared
        todo = self._prepare_todo
        while todo and time.time() < stop and len(out) < self.prepare_max:
            started = time.perf_counter()
            chunk, self._prepare_todo = todo[: self.chunk_size], todo[self.chunk_size :]
            todo = self._prepare_todo
            rows = self._read_entries(client, chunk)
            entries: list[tuple[str, _Decoded, str, int, FirePlan]] = []
            for key, (definition, meta) in zip(chunk, rows, strict=True):
                if definition is None:
                    continue
                decoded = self._decode(key, definition)
                if decoded is None or decoded.schedule is None:
                    continue
                last, count = decode_meta(meta)
                plan = decoded.schedule.plan(last, at)
                if plan.fires and not plan.misfired:
                    entries.append((key, decoded, meta or "", count, plan))
            self._declared = set()
            self._capturing = True
            try:
                with capture(producer) as sink:
                    self._sink = sink
                    for key, decoded, meta, count, plan in entries:
                        start = len(sink)
                        try:
                            for fire in plan.fires:
                                self._publish(decoded.definition, fire, producer)
                        except Exception as exc:  # built again at the due instant, where a failure counts
                            log.debug("beat: preparing %s: %s", key, exc)
                            continue
                        if len(sink) - start == len(plan.fires):
                            write = _fired_write(decoded, count, plan.fires, plan.position, plan.next_fire)
                            out[key] = _PreparedEntry(decoded, meta, count, plan, tuple(sink[start:]), write)
            finally:
                self._declared = None
                self._capturing = False
                self._sink = None
            if chunk:
                self._prepare_cost = 0.8 * self._prepare_cost + 0.2 * (time.perf_counter() - started) / len(chunk)
        if time.time() >= second - PREPARE_MARGIN or len(out) >= self.prepare_max:
            self._prepare_todo = []  # the rest is built at the due instant

    def _reset_prepared(self) -> None:
        self._prepared = {}
        self._prepared_second = 0
        self._prepare_todo = []

    def _take_prepared(self, client: redis.Redis, keys: list[str], now_s: int) -> dict[str, _PreparedEntry]:
        """The prepared entries among ``keys`` that may go out as prepared (each is used once)."""
        prepared = self._prepared
        if not prepared:
            return {}
        checked = self._prechecked  # (see _dispatch_due)
        out: dict[str, _PreparedEntry] = {}
        candidates: list[tuple[str, _PreparedEntry]] = []
        for key in keys:
            entry = prepared.pop(key, None)
            if entry is None or not entry.usable_at(now_s):
                continue
            unchanged = checked.get(key)
            if unchanged is None:
                candidates.append((key, entry))
            elif unchanged:
                out[key] = entry
        if candidates:
            flags = self._unchanged(client)(keys=[k for k, _ in candidates], args=_unchanged_args(candidates))
            out.update((k, entry) for (k, entry), ok in zip(candidates, flags, strict=True) if int(ok) == 1)
        return out

    def _unchanged(self, client: redis.Redis) -> Any:
        if self._unchanged_script is None:
            self._unchanged_script = client.register_script(lua_source("entries_unchanged"))
        return self._unchanged_script

    def _publish_one(self, job: tuple[dict[str, Any], datetime], producer: Any = None) -> Exception | None:
        try:
            self._publish(job[0], job[1], producer)
        except Exception as exc:
            return exc
        return None

    def _publish(self, definition: dict[str, Any], fire: datetime, producer: Any = None) -> None:
        options = dict(definition.get("options") or {})
        declared = self._declared
        if declared is not None:
            # Celery declares the target queue with every message (a bind and copies, ~15% of a
            # publish); once per queue and batch is enough: the first message of the batch does it
            queue = options.get("queue")
            if queue in declared:
                options["declare"] = []
            else:
                declared.add(queue)
        jitter = _jitter_of(definition)
        delay_ms: int | None = None
        if jitter:
            # spread fires that share a second: a fixed offset per (trigger, scheduled_for), so every
            # beat and every re-publish agrees; scheduled_for stays the nominal time and the key;
            # the payload carries the offset so history shows it
            offset = jitter_offset(str(definition.get("name")), fire, jitter)
            options["eta"] = fire + offset
            delay_ms = offset // timedelta(milliseconds=1)
        # a message prepared ahead says it was enqueued at its scheduled_for: it is written at that
        # instant or later, never before (beat's own lateness metric times the real write)
        enqueued = max(datetime.now(UTC), fire)
        kwargs = fire_kwargs(definition.get("kwargs") or {}, iso_utc(fire), enqueued.isoformat(), delay_ms)
        log.debug("beat: fire %s scheduled_for %s", definition.get("name"), kwargs["scheduled_for"])
        if self._capturing:  # the same message through Celery's builder, minus send_task's per-call lookups
            sink = self._sink
            if delay_ms is None and sink is not None and options.get("declare") == []:
                # (the first message of a batch to a queue is built in full: it declares the queue)
                found = self._fire_template(definition, options, producer, sink)
                if found is not None:
                    template, fill = found
                    sink.append(template.render(kwargs["scheduled_for"], kwargs["enqueued_at"], *fill))
                    return
            if self._sender is None:
                self._sender = FireSender(self.app)
            self._sender.send(producer, definition["task"], kwargs, options, repr(kwargs))
            return
        self.app.send_task(
            definition["task"],
            args=[],
            kwargs=kwargs,
            producer=producer,
            ignore_result=True,  # nobody waits on a fire: no result subscription per task in beat
            argsrepr="()",
            kwargsrepr=repr(kwargs),  # what Flower shows; saves Celery's saferepr pass (~10% per publish)
            **options,
        )

    def _fire_template(
        self, definition: dict[str, Any], options: dict[str, Any], producer: Any, sink: list[Prepared]
    ) -> _TemplateFill | None:
        """The template of this entry's fire messages and the values that fill its open trigger
        fields (see :class:`~woow_scheduler.messaging.publish.FireTemplate`), or ``None`` where
        there is none (the message is then built in full).

        Triggers share a template when they differ only in :func:`~woow_scheduler.messaging.publish.plain`
        ids, user and shadow (the usual case: one template for a whole burst); a value that is not
        plain stays written in the template, which is then this trigger's own.
        """
        entry_kwargs = definition.get("kwargs") or {}
        task = definition["task"]
        given = (entry_kwargs.get("workflow_id"), entry_kwargs.get("trigger_id"), entry_kwargs.get("user_id"))
        shadow = options.get("shadow")
        values = (*given, shadow)
        opened = tuple(plain(v) for v in values)
        if not all(opened) and any("@@woow-" in repr(v) for v in values):
            return None  # a written value holding a mark could not be told from a place to fill
        fill = cast(tuple[str, str, str, str], tuple(v if o else "" for v, o in zip(values, opened, strict=True)))
        rest = sorted((k, v) for k, v in options.items() if k != "shadow")
        key = (
            task,
            "shadow" in options,
            repr(rest),
            tuple(None if o else repr(v) for v, o in zip(values, opened, strict=True)),
        )
        try:
            template = self._templates[key]
        except KeyError:
            template = self._new_template(key, task, given, shadow, opened, options, producer, sink)
        return (template, fill) if template is not None else None

    def _new_template(
        self,
        key: tuple[Any, ...],
        task: str,
        given: tuple[Any, Any, Any],
        shadow: Any,
        opened: tuple[bool, ...],
        options: dict[str, Any],
        producer: Any,
        sink: list[Prepared],
    ) -> FireTemplate | None:
        names = ("workflow_id", "trigger_id", "user_id")
        entry = {n: MARKS[n] if o else v for n, v, o in zip(names, given, opened, strict=False)}
        opts = dict(options)
        if "shadow" in opts:
            opts["shadow"] = MARKS["shadow"] if opened[3] else shadow
        sender = self._sender
        if sender is None:
            sender = self._sender = FireSender(self.app)

        def build() -> None:
            kwargs = fire_kwargs(entry, MARKS["scheduled_for"], MARKS["enqueued_at"], None)
            sender.send(producer, task, kwargs, dict(opts), repr(kwargs))

        if len(self._templates) >= _DECODE_CACHE_MAX:
            self._templates.clear()
            self._template_text.clear()
        template = self._templates[key] = FireTemplate.build(build, sink, self._template_text)
        return template

    def _generic_entry(self, key: str, decoded: _Decoded, meta: str | None) -> None:
        """A plain RedBeat entry (e.g. a static beat_schedule entry): RedBeat's own handling."""
        last, count = decode_meta(meta)
        entry = self.Entry(app=self.app, **decoded.definition)
        entry.last_run_at = last
        entry.total_run_count = count
        self.maybe_due(entry, **self._maybe_due_kwargs)

    def _decode(self, key: str, definition: str) -> _Decoded | None:
        cached = self._decoded.get(definition)
        if cached is not None:
            return cached
        try:
            data = loads(definition)
        except Exception as exc:
            log.error("beat: entry %s has an unreadable definition (%s); parked until a sync rewrites it", key, exc)
            return None
        sched = data.get("schedule")
        if len(self._decoded) >= _DECODE_CACHE_MAX:
            self._decoded.clear()
        decoded = _Decoded(data, sched if isinstance(sched, WoowTriggerSchedule) else None, _sha(definition))
        self._decoded[definition] = decoded
        return decoded

    def _read_entries(self, client: redis.Redis, keys: list[str]) -> list[tuple[Any, Any]]:
        """Each entry's definition and meta (``None`` when missing), in one script call
        (:file:`lua/entries_read.lua`, the reconciler's read: one command and one reply for the
        chunk instead of one ``HMGET`` each, whose packing and parsing cost more than the read)."""
        if self._read_script is None:
            self._read_script = client.register_script(lua_source("entries_read"))
        flat = self._read_script(keys=keys, args=[self.keys.redbeat_schedule])
        return [(flat[i], flat[i + 1]) for i in range(0, 3 * len(keys), 3)]

    def _read_command(self, keys: list[str]) -> tuple[Any, ...]:
        """``entries_read.lua`` for ``keys`` as one command (see :meth:`_read_entries`)."""
        return ("EVAL", _lua("entries_read"), len(keys), *keys, self.keys.redbeat_schedule)

    def _rows_ahead(
        self, client: redis.Redis, inflight: _Inflight, ahead: tuple[list[str], int] | None, keys: list[str]
    ) -> list[tuple[Any, Any]]:
        """Each of ``keys``' definition and meta: from the read sent ahead where it covered the key
        (every key not prepared when it was sent), read now otherwise."""
        found: dict[str, tuple[Any, Any]] = {}
        if ahead is not None:
            read, ticket = ahead
            flat = inflight.take(ticket)
            found = {k: (flat[3 * i], flat[3 * i + 1]) for i, k in enumerate(read)}
        missing = [k for k in keys if k not in found]
        if missing:
            found.update(zip(missing, self._read_entries(client, missing), strict=True))
        return [found[k] for k in keys]

    def _fired_many_script(self, client: redis.Redis) -> Any:
        if self._many_script is None:
            self._many_script = client.register_script(lua_source("entries_fired"))
        return self._many_script

    def _fired_script(self, client: redis.Redis) -> Any:
        if self._script is None:
            self._script = client.register_script(lua_source("entry_fired"))
        return self._script

    def _sleep_time(self, client: redis.Redis, failures: int) -> float:
        first = client.zrangebyscore(self.keys.redbeat_schedule, 0, "+inf", start=0, num=1, withscores=True)
        if not first:
            return float(self.max_interval)
        due = float(first[0][1])
        wait = due - time.time()
        if wait <= 0:
            return float(self.max_interval) if failures else 0.01
        if self._prepare_todo:
            return 0.001  # the next slice of preparation (passes dispatch what is due in between)
        if self.prepare_ahead > 0 and int(due) != self._prepared_second and can_prepare(self.producer):
            # wake early enough to prepare that second's messages (see _prepare_next)
            early = max(self._prepare_wake, due - self.prepare_ahead) - time.time()
            if early > 0:
                return min(early, float(self.max_interval))
        return min(wait + WAKE_AFTER, float(self.max_interval))

    def _write_state(self, client: redis.Redis) -> None:
        mono = time.monotonic()
        if mono - self._last_state_write < 1.0:
            return
        self._last_state_write = mono
        assert self.last_tick is not None
        with client.pipeline(transaction=False) as pipe:
            pipe.hset(
                self.keys.beat_state,
                mapping={
                    "instance": self.instance_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "last_tick": self.last_tick.isoformat(),
                    "leader_since": self.leader_since.isoformat() if self.leader_since else "",
                    "lock_timeout": float(self.lock_timeout),
                },
            )
            pipe.expire(self.keys.beat_state, max(60, int(self.lock_timeout * 3)))
            pipe.execute()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self._beat_lock is not None and self._beat_lock.held

    def _serve_metrics(self, client: redis.Redis) -> None:
        s = self.settings
        if s.metrics_port is None or getattr(self, "_metrics_served", False):
            return
        self._metrics_served = True
        keys = self.keys

        def depth() -> int | None:
            if s.effective_broker_url != s.redis_url:
                return None  # another broker: the API's /metrics or the broker's own exporter
            return int(client.llen(keys.broker_queue(s.queue)))

        self.metrics.watch_stores(lambda: int(client.zcard(keys.redbeat_schedule)), s.queue, depth)
        self.metrics.serve(s.metrics_port, s.metrics_address)

    def _start_maintenance(self) -> None:
        if self._maintenance is None and self.run_maintenance:
            self._maintenance = _Maintenance(self)
            self._maintenance.start()

    def close(self) -> None:
        self._closing = True  # the maintenance thread stops waiting for gaps between passes
        self._restore_gc()
        if self._maintenance is not None:
            self._maintenance.stop()
            self._maintenance = None
        if self._beat_lock is not None:
            if self._beat_lock.held:
                log.info("beat: releasing the beat lock")
            self._beat_lock.release()
        super().close()

    @property
    def info(self) -> str:
        s = self.settings
        return "\n".join(
            [
                f"       . redis -> {self.keys.redbeat_prefix} (woow scheduler)",
                f"       . lock -> `{self.lock_name}` {float(self.lock_timeout):g}s",
                f"       . reconcile -> every {s.reconcile_interval:g}s, full every {s.full_reconcile_interval:g}s",
            ]
        )


class _FailureStreak:
    """Logs a failing maintenance step at 3 a.m. without drowning the log: the first failure of a
    streak with its traceback, then one line every ``REPORT_EVERY`` seconds, and one when it ends
    (a PostgreSQL outage used to write a traceback every half second)."""

    REPORT_EVERY = 30.0

    def __init__(self) -> None:
        self.count = 0
        self.since = 0.0
        self.next_report = 0.0

    def failed(self, exc: BaseException, mono: float) -> None:
        self.count += 1
        if self.count == 1:
            self.since, self.next_report = mono, mono + self.REPORT_EVERY
            log.error("beat: maintenance step failed: %s", exc, exc_info=True)
        elif mono >= self.next_report:
            self.next_report = mono + self.REPORT_EVERY
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            log.error("beat: maintenance still failing (%d times in %.0f s): %s", self.count, mono - self.since, first)

    def ok(self, mono: float) -> None:
        if self.count:
            log.warning("beat: maintenance recovered after %d failed steps in %.0f s", self.count, mono - self.since)
            self.count = 0


class _Maintenance(threading.Thread):
    """Everything of beat that touches PostgreSQL, off the hot path."""

    def __init__(self, scheduler: WoowScheduler) -> None:
        super().__init__(name="woow-beat-maintenance", daemon=True)
        self.scheduler = scheduler
        self.settings = scheduler.settings
        self._stop_event = threading.Event()
        self._full_requested = threading.Event()
        self._full_wanted_after = 0.0  # monotonic: a full reconcile begun after this satisfies the request
        self.db: Database | None = None
        self._reported_leader: bool | None = None
        self.started_at = datetime.now(UTC)

    def request_full(self, since: float | None = None) -> None:
        """Ask for a full reconcile begun after ``since`` (monotonic; default now): one that began
        after it (the thread's own first one, racing the lock's taking) already answers it."""
        self._full_wanted_after = time.monotonic() if since is None else since
        self._full_requested.set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        if self.db is not None:
            try:
                with self.db.session() as session:
                    row = session.get(SchedulerInstance, self.scheduler.instance_id)
                    if row is not None:
                        session.delete(row)
            except Exception as exc:
                log.warning("beat: could not remove the heartbeat row: %s", exc)
            self.db.dispose()

    def run(self) -> None:
        s = self.settings
        self.db = Database(s.database_url)
        client = get_redis(self.scheduler.app)
        reconciler = Reconciler(s, self.db, client)
        # reconcile in small batches, each started in a gap between beat's passes (see wait_quiet)
        reconciler.batch_size = min(reconciler.batch_size, MAINTENANCE_BATCH)
        reconciler.pause = self.scheduler.wait_quiet
        next_heartbeat = next_flush = next_incr = next_full = next_prune = next_sweep = 0.0
        last_pass_start: datetime | None = None
        last_full_began = float("-inf")
        streak = _FailureStreak()
        while not self._stop_event.is_set():
            # between beat's passes (no GIL contention while fires go out), never starved: at most
            # 5 s behind a burst
            self.scheduler.wait_quiet(limit=5.0)
            mono = time.monotonic()
            try:
                if mono >= next_heartbeat or self._reported_leader != self.scheduler.is_leader:
                    self._heartbeat()
                    next_heartbeat = mono + s.heartbeat_interval
                if self.scheduler.is_leader:
                    if mono >= next_prune:
                        self._prune_dead_beats()
                        reap_lost_runs(s, self.db, client)
                        next_prune = mono + max(60.0, 6 * s.heartbeat_interval)
                    if mono >= next_sweep:
                        swept = sweep_fires(s, self.db, client, self.scheduler.app)
                        resent = resend_stale(s, self.db, self.scheduler.app)
                        self.scheduler.metrics.sweeper_republished.inc(swept.republished + len(resent))
                        next_sweep = mono + max(5.0, 5 * s.bookkeeping_interval)
                    if mono >= next_flush:
                        drain_fired(s, self.db, client)
                        next_flush = mono + s.bookkeeping_interval
                    wanted = False
                    if self._full_requested.is_set():
                        self._full_requested.clear()
                        # not when a full reconcile began since it was asked for (the first one
                        # of this thread races the lock's taking, which asks for one)
                        wanted = last_full_began < self._full_wanted_after
                    if wanted or mono >= next_full:
                        last_full_began = time.monotonic()
                        start = reconciler.db_now()
                        report = reconciler.full()
                        log.info("beat: %s", report.summary())
                        self._count_reconcile("full", report)
                        last_pass_start = start
                        next_full = mono + s.full_reconcile_interval
                        next_incr = mono + s.reconcile_interval
                    elif mono >= next_incr and last_pass_start is not None:
                        start = reconciler.db_now()
                        report = reconciler.incremental(incremental_since(last_pass_start))
                        self._count_reconcile("incremental", report)
                        last_pass_start = start
                        next_incr = mono + s.reconcile_interval
                        if report.drift_suspected:
                            log.info("beat: entry count differs from active triggers; full reconcile next")
                            self.request_full()
                        elif report.added or report.updated or report.removed:
                            log.info("beat: %s", report.summary())
            except Exception as exc:
                streak.failed(exc, mono)
            else:
                streak.ok(mono)
            self._stop_event.wait(min(0.5, s.bookkeeping_interval))

    def _count_reconcile(self, kind: str, report: Any) -> None:
        self.scheduler.metrics.reconciled(kind, report.seconds, report.added, report.updated, report.removed)

    def _prune_dead_beats(self) -> None:
        """Remove heartbeat rows of beats silent for six heartbeats (killed without a clean stop)."""
        assert self.db is not None
        cutoff = datetime.now(UTC) - timedelta(seconds=max(60.0, 6 * self.settings.heartbeat_interval))
        with self.db.session() as session:
            session.execute(
                delete(SchedulerInstance).where(
                    SchedulerInstance.kind == InstanceKind.BEAT, SchedulerInstance.last_heartbeat < cutoff
                )
            )

    def _heartbeat(self) -> None:
        assert self.db is not None
        sch = self.scheduler
        self._reported_leader = sch.is_leader
        info = {
            "key_prefix": self.settings.key_prefix,
            "lock_timeout": float(sch.lock_timeout),
            "leader_since": sch.leader_since.isoformat() if sch.leader_since and sch.is_leader else None,
            "last_tick": sch.last_tick.isoformat() if sch.last_tick else None,
        }
        with self.db.session() as session:
            session.merge(
                SchedulerInstance(
                    id=sch.instance_id,
                    kind=InstanceKind.BEAT,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=self.started_at,
                    last_heartbeat=datetime.now(UTC),
                    is_leader=sch.is_leader,
                    info=info,
                )
            )


def _fired_write(
    decoded: _Decoded, count: int, fires: tuple[datetime, ...], pos: datetime | None, nxt: datetime | None
) -> tuple[str, int, str]:
    """An entry's record of one pass: its new meta ('' = unchanged), score (-1 = exhausted) and fired record."""
    sched = decoded.schedule
    assert sched is not None
    new_meta = encode_meta(pos, count + len(fires)) if pos is not None else ""
    score = int(nxt.timestamp()) if nxt is not None else -1
    definition = decoded.definition
    record = (
        fired_record(str(definition.get("name")), fires, nxt, sched.version, definition.get("kwargs")) if fires else ""
    )
    return new_meta, score, record


def _unchanged_args(entries: list[tuple[str, _PreparedEntry]]) -> list[str]:
    """``entries_unchanged.lua``'s arguments: each entry's definition sha and meta as prepared."""
    args: list[str] = []
    for _, entry in entries:
        args += (entry.decoded.sha, entry.meta)
    return args


def _jitter_of(definition: dict[str, Any]) -> float:
    """The entry's jitter in seconds (0 without one), from its schedule object or JSON form."""
    sched = definition.get("schedule")
    if isinstance(sched, WoowTriggerSchedule):
        return float(sched.spec.jitter or 0)
    if isinstance(sched, dict):
        return float((sched.get("spec") or {}).get("jitter") or 0)
    return 0.0


def _priority(decoded: Any) -> int:
    sched = decoded.schedule
    return int(sched.spec.priority) if sched is not None else 0


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def run_beat(settings: Settings, *, loglevel: str | None = None) -> None:
    """``woow beat``: run celery beat in this process with our scheduler (blocks until stopped)."""
    app = create_app(settings)
    app.Beat(
        scheduler=SCHEDULER_PATH,
        max_interval=settings.beat_max_loop_interval,
        loglevel=loglevel or settings.log_level,
    ).run()


def beat_status(settings: Settings, client: redis.Redis, db: Database | None = None) -> dict[str, Any]:
    """For ``woow status``: the active beat (Redis) and the beat heartbeat rows (PostgreSQL)."""
    keys = Keys(settings.key_prefix)
    state = cast(dict[str, str], client.hgetall(keys.beat_state))
    lock_ttl = client.pttl(keys.redbeat_lock)
    out: dict[str, Any] = {
        "active": state or None,
        "lock_held": lock_ttl is not None and lock_ttl > 0,
        "lock_ttl_s": (lock_ttl / 1000.0) if lock_ttl and lock_ttl > 0 else None,
        "entries": client.zcard(keys.redbeat_schedule),
        "pending_bookkeeping": client.xlen(keys.fired),
        "last_tick_age_s": None,
        "instances": [],
    }
    if state.get("last_tick"):
        out["last_tick_age_s"] = round(
            (datetime.now(UTC) - datetime.fromisoformat(state["last_tick"])).total_seconds(), 3
        )
    if db is not None:
        with db.session() as session:
            rows = session.query(SchedulerInstance).filter(SchedulerInstance.kind == InstanceKind.BEAT).all()
            out["instances"] = [
                {
                    "id": r.id,
                    "host": r.host,
                    "pid": r.pid,
                    "is_leader": r.is_leader,
                    "last_heartbeat": r.last_heartbeat.isoformat(),
                    "started_at": r.started_at.isoformat(),
                }
                for r in rows
            ]
    return out
