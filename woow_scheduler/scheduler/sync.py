"""PostgreSQL → RedBeat reconcile: full, incremental, and per trigger (write-through).

Every pass is idempotent and safe to run concurrently with beat and with other passes:

- Entries are written with three commands (``HSET definition``, ``HSETNX meta``, ``ZADD``) in
  pipelined batches, never through ``RedBeatSchedulerEntry.save()``.
- An existing entry's ``meta`` (its last fire) is never overwritten by a reconcile; a missing one is
  rebuilt from ``triggers.previous_fire_time``.
- Scores written here come from a position at or before the true one, so they can only be early,
  never late; beat re-evaluates an entry whose score is early without firing it.  Beat records its
  fires with a script that refuses to touch an entry that a reconcile has deleted.
- Definitions are canonical JSON, so an unchanged entry costs one read and no write.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from sqlalchemy import Select, func, or_, select

from ..calendars import parse_calendar
from ..db import CalendarRow, Database, Execution, Trigger, Workflow
from ..db.trigger_state import complete_exhausted
from ..db.types import UTCDateTime
from ..enums import ACTIVE_TRIGGER_STATES
from ..errors import StoreUnavailable
from ..keys import Keys
from ..lua import lua_source
from ..messaging.publish import publish_options
from ..redis_store import make_redis
from ..settings import Settings
from ..triggers import SPEC_ADAPTER
from .codec import decode_meta, definition_text, encode_meta
from .schedule import WoowTriggerSchedule

log = logging.getLogger("woow.sync")

ACTIVE_STATES = ACTIVE_TRIGGER_STATES  # the name other modules imported

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``, called after each batch (for the CLI's progress bar)."""


@dataclass
class SyncReport:
    mode: str
    total: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    completed: int = 0
    errors: int = 0
    seconds: float = 0.0
    drift_suspected: bool = False
    error_messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["error_messages"] = self.error_messages[:20]
        return data

    def summary(self) -> str:
        return (
            f"{self.mode} sync: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {self.completed} completed, {self.errors} errors "
            f"in {self.seconds:.2f} s"
        )


def _row_stmt() -> Select[Any]:
    return (
        select(
            Trigger.id,
            Trigger.workflow_id,
            Trigger.spec,
            Trigger.state,
            Trigger.previous_fire_time,
            Trigger.fire_count,
            Trigger.version,
            Trigger.updated_at,
            Trigger.anchor_at,
            Trigger.created_by,
            Workflow.name.label("workflow_name"),
            Workflow.owner_user_id,
            Workflow.timeout.label("workflow_timeout"),
            CalendarRow.definition.label("calendar"),
        )
        .join(Workflow, Workflow.id == Trigger.workflow_id)
        .outerjoin(CalendarRow, CalendarRow.id == Trigger.calendar_id)
    )


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class Reconciler:
    """Brings RedBeat entries in line with the ``triggers`` table."""

    def __init__(self, settings: Settings, db: Database, client: redis.Redis) -> None:
        self.settings = settings
        self.db = db
        self.redis = client
        self.keys = Keys(settings.key_prefix)
        self.batch_size = settings.sync_batch_size
        #: called before each batch of rows (beat's maintenance thread waits there for a gap
        #: between beat's passes); ``None``: no wait
        self.pause: Callable[[], None] | None = None
        self._scripts: dict[str, Any] = {}
        self._options_cache: dict[tuple[str, float | None], str] = {}
        self._spec_cache: dict[str, Any] = {}

    # -- public passes --------------------------------------------------------------------
    def full(self, progress: ProgressCallback | None = None) -> SyncReport:
        """Every trigger: add missing entries, fix drifted ones, remove entries of gone/inactive triggers."""
        report = SyncReport("full")
        t0 = time.perf_counter()
        try:
            # snapshot the entries BEFORE reading PostgreSQL: an entry written after its trigger's
            # commit is then always matched by a row of the query below
            members = cast(list[str], self.redis.zrange(self.keys.redbeat_schedule, 0, -1))
            existing = {k for k in members if self._is_entry_key(k)}
            with self.db.session() as session:
                report.total = int(session.scalar(select(func.count()).select_from(Trigger)) or 0)
            seen: set[str] = set()
            done = 0
            for batch in self._batches(_row_stmt()):
                seen.update(self._sync_rows(batch, report, existing))
                done += len(batch)
                if progress is not None:
                    progress(done, report.total)
            stale = sorted(existing - seen)
            for i in range(0, len(stale), self.batch_size):
                self._delete_keys(stale[i : i + self.batch_size])
            report.removed += len(stale)
            report.removed += self._drop_resurrected(seen, every_trigger=True)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: sync failed ({exc})") from exc
        report.seconds = time.perf_counter() - t0
        return report

    def incremental(self, since: datetime) -> SyncReport:
        """Triggers (or their workflows) changed at or after ``since``; flags a count mismatch."""
        report = SyncReport("incremental")
        t0 = time.perf_counter()
        stmt = _row_stmt().where(or_(Trigger.updated_at >= since, Workflow.updated_at >= since))
        try:
            written: set[str] = set()
            for batch in self._batches(stmt):
                report.total += len(batch)
                written.update(self._sync_rows(batch, report, None))
            report.removed += self._drop_resurrected(written)
            with self.db.session() as session:
                active = int(
                    session.scalar(select(func.count()).select_from(Trigger).where(Trigger.state.in_(ACTIVE_STATES)))
                    or 0
                )
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcard(self.keys.redbeat_schedule)
                pipe.scard(self.keys.redbeat_statics)
                zcard, statics = pipe.execute()
            report.drift_suspected = int(zcard) - int(statics) != active
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: sync failed ({exc})") from exc
        report.seconds = time.perf_counter() - t0
        return report

    def triggers(self, trigger_ids: Iterable[uuid.UUID | str]) -> SyncReport:
        """Exactly these triggers (write-through); ids without a row lose their entry."""
        report = SyncReport("triggers")
        t0 = time.perf_counter()
        ids = [uuid.UUID(str(t)) for t in trigger_ids]
        try:
            for i in range(0, len(ids), self.batch_size):
                chunk = ids[i : i + self.batch_size]
                with self.db.session() as session:
                    rows = list(session.execute(_row_stmt().where(Trigger.id.in_(chunk))))
                report.total += len(chunk)
                found = {r.id for r in rows}
                self._sync_rows(rows, report, None)
                gone = [self.keys.redbeat_entry(t) for t in chunk if t not in found]
                if gone:
                    report.removed += self._delete_keys(gone)
                report.removed += self._drop_resurrected({self.keys.redbeat_entry(r.id) for r in rows})
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: sync failed ({exc})") from exc
        report.seconds = time.perf_counter() - t0
        return report

    def _drop_resurrected(self, written: set[str], *, every_trigger: bool = False) -> int:
        """Re-check after the write: a pass reads its rows (the full pass streams them from one
        snapshot) before it writes, so a trigger paused or deleted after its row was read got its
        entry back from this pass (the write-through of the pause or delete had already removed it).
        Drop the entries of every trigger the pass wrote that is not active now; a trigger resumed
        meanwhile keeps its entry (or gets it back at the next incremental pass).

        ``written``: the entry keys of the rows the pass read.  ``every_trigger`` (the full pass,
        which read them all): read the active triggers in one stream instead of by id.
        """
        if not written:
            return 0
        active: set[str] = set()
        active_ids = select(Trigger.id).where(Trigger.state.in_(ACTIVE_STATES))
        with self.db.session() as session:
            if every_trigger:
                for (tid,) in session.execute(active_ids):
                    active.add(self.keys.redbeat_entry(tid))
            else:
                ids = [uuid.UUID(k[len(self.keys.redbeat_prefix) :]) for k in written if self._is_entry_key(k)]
                for i in range(0, len(ids), self.batch_size):
                    for (tid,) in session.execute(active_ids.where(Trigger.id.in_(ids[i : i + self.batch_size]))):
                        active.add(self.keys.redbeat_entry(tid))
        gone = sorted(k for k in written if k not in active)
        if not gone:
            return 0
        present = cast(list[Any], self.redis.zmscore(self.keys.redbeat_schedule, gone))
        gone = [k for k, score in zip(gone, present, strict=True) if score is not None]
        for i in range(0, len(gone), self.batch_size):
            self._delete_keys(gone[i : i + self.batch_size])
        if gone:
            log.info("sync: %d entries of triggers paused or deleted during the pass removed", len(gone))
        return len(gone)

    def db_now(self) -> datetime:
        """The database's clock, aware UTC on every dialect (SQLite's CURRENT_TIMESTAMP is naive UTC)."""
        with self.db.session() as session:
            value = session.scalar(select(func.now(type_=UTCDateTime())))
        assert isinstance(value, datetime) and value.tzinfo is not None
        return value

    # -- internals --------------------------------------------------------------------------
    def _is_entry_key(self, key: str) -> bool:
        prefix = self.keys.redbeat_prefix
        if not key.startswith(prefix):
            return False
        try:
            uuid.UUID(key[len(prefix) :])
        except ValueError:
            return False
        return True

    def _batches(self, stmt: Select[Any]) -> Iterator[list[Any]]:
        with self.db.engine.connect() as conn:
            result = conn.execution_options(yield_per=self.batch_size).execute(stmt)
            for part in result.partitions():
                if self.pause is not None:
                    self.pause()
                yield list(part)

    def _delete_keys(self, keys: Sequence[str]) -> int:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(self.keys.redbeat_schedule, key)
                pipe.delete(key)
            results = pipe.execute()
        return sum(1 for i in range(0, len(results), 2) if results[i] or results[i + 1])

    def _script(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.redis.register_script(lua_source(name))
        return script

    def _options_json(self, workflow_name: str, timeout: float | None) -> str:
        key = (workflow_name, timeout)
        text = self._options_cache.get(key)
        if text is None:
            options = publish_options(self.settings, workflow_name=workflow_name, timeout=timeout)
            text = self._options_cache[key] = _canonical(options)
        return text

    def _schedule(
        self, spec_json: str, spec: Any, anchor: datetime, version: int, calendar: Any = None
    ) -> WoowTriggerSchedule:
        parsed = self._spec_cache.get(spec_json)
        if parsed is None:
            if len(self._spec_cache) > 50_000:
                self._spec_cache.clear()
            parsed = self._spec_cache[spec_json] = SPEC_ADAPTER.validate_python(spec)
        cal = parse_calendar(calendar) if calendar is not None else None
        return WoowTriggerSchedule(parsed, anchor, version, cal)

    def _sync_rows(self, rows: Sequence[Any], report: SyncReport, existing: set[str] | None) -> list[str]:
        """One batch: one scripted read and one scripted write (two round trips).  Returns its keys."""
        keys = [self.keys.redbeat_entry(r.id) for r in rows]
        if not keys:
            return keys
        schedule_key = self.keys.redbeat_schedule
        flat = self._script("entries_read")(keys=keys, args=[schedule_key])
        # entries to rebuild (Redis lost them): their fires that beat published but no worker started
        # died with Redis' broker queue, so they resume after the last fire that has an execution row
        rebuild = [
            row.id
            for i, row in enumerate(rows)
            if flat[3 * i + 1] is None and row.previous_fire_time is not None and row.state in ACTIVE_STATES
        ]
        executed = self._last_executed(rebuild) if rebuild else {}
        exhausted: list[dict[str, Any]] = []
        forward: list[tuple[str, datetime, int]] = []
        out_keys: list[str] = []
        out_args: list[Any] = [schedule_key]
        for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
            cur_def, cur_meta, cur_score = flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]
            scheduled = cur_score is not None if existing is None else key in existing
            if row.state not in ACTIVE_STATES:
                if cur_def is not None or cur_meta is not None or cur_score is not None:
                    out_keys.append(key)
                    out_args += ("d", "", "", 0)
                    report.removed += 1
                else:
                    report.unchanged += 1
                continue
            spec_json = _canonical(row.spec)
            desired = definition_text(
                trigger_id=row.id,
                workflow_id=row.workflow_id,
                user_id=row.created_by or row.owner_user_id,
                options_json=self._options_json(row.workflow_name, row.workflow_timeout),
                spec_json=spec_json,
                anchor=row.anchor_at,
                version=row.version,
                calendar_json=_canonical(row.calendar) if row.calendar is not None else None,
            )
            pg_prev = row.previous_fire_time
            if cur_meta is None and pg_prev is not None:
                ran = executed.get(row.id)
                if ran is not None and ran < pg_prev:
                    pg_prev = ran
            last: datetime | None = None
            total = 0
            if cur_meta is not None and pg_prev is not None:
                last, total = decode_meta(cur_meta)
            behind = cur_meta is not None and pg_prev is not None and (last is None or last < pg_prev)
            if cur_def == desired and scheduled and not behind:
                report.unchanged += 1
                continue
            try:
                sched = self._schedule(spec_json, row.spec, row.anchor_at, row.version, row.calendar)
            except Exception as exc:  # a stored spec this version cannot read
                report.errors += 1
                report.error_messages.append(f"trigger {row.id}: {exc}")
                log.error("sync: trigger %s has an unreadable spec: %s", row.id, exc)
                continue
            if cur_meta is not None and last is None:
                last, total = decode_meta(cur_meta)
            known = [t for t in (last, pg_prev) if t is not None]
            nxt = sched.next_fire_time(max(known) if known else None)
            if nxt is None:
                exhausted.append({"_id": row.id, "_version": row.version})
                if cur_def is not None or scheduled:
                    out_keys.append(key)
                    out_args += ("d", "", "", 0)
                continue
            if behind and pg_prev is not None:
                forward.append((key, pg_prev, max(total, row.fire_count)))
            out_keys.append(key)
            out_args += (
                "w",
                desired if cur_def != desired else "",
                encode_meta(pg_prev, row.fire_count) if cur_meta is None else "",
                int(nxt.timestamp()),
            )
            if cur_def is None:
                report.added += 1
            else:
                report.updated += 1
        if out_keys:
            self._script("entries_write")(keys=out_keys, args=out_args)
        for key, prev, count in forward:
            self._move_meta_forward(key, prev, count)
        if exhausted:
            report.completed += self._complete(exhausted)
        return keys

    def _last_executed(self, trigger_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime]:
        """The latest ``scheduled_for`` with an execution row, per trigger (one index probe each)."""
        latest = (
            select(func.max(Execution.scheduled_for))
            .where(Execution.trigger_id == Trigger.id)
            .correlate(Trigger)
            .scalar_subquery()
        )
        with self.db.session() as session:
            rows = session.execute(select(Trigger.id, latest).where(Trigger.id.in_(list(trigger_ids)))).all()
        return {tid: when for tid, when in rows if when is not None}

    def _move_meta_forward(self, key: str, prev: datetime, count: int) -> None:
        """Redis lags PostgreSQL (restored from an old snapshot): move ``last_run_at`` forward only."""
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                last, _ = decode_meta(cast(str | None, pipe.hget(key, "meta")))
                if last is not None and last >= prev:
                    return
                pipe.multi()
                pipe.hset(key, "meta", encode_meta(prev, count))
                pipe.zadd(self.keys.redbeat_schedule, {key: 0})  # beat re-evaluates it
                pipe.execute()
            except redis.WatchError:
                pass  # beat fired it meanwhile: its meta is newer than PostgreSQL's

    def _complete(self, rows: list[dict[str, Any]]) -> int:
        """Triggers whose schedule has no fire left become COMPLETE (unless changed meanwhile)."""
        with self.db.session() as session:
            return complete_exhausted(session.connection(), rows)


class RedBeatMirror:
    """:class:`~woow_scheduler.interfaces.ScheduleMirror` over RedBeat: the service's write-through.

    Call ``triggers_changed(ids)`` right after committing any change to these triggers (add,
    update, pause, resume, delete; for a workflow delete pass the ids its triggers had).  Raises
    :class:`StoreUnavailable` when Redis is down: the caller logs it, the reconciler repairs it.
    """

    def __init__(self, settings: Settings, db: Database, client: redis.Redis | None = None) -> None:
        self.reconciler = Reconciler(settings, db, client or make_redis(settings.redis_url))

    def triggers_changed(self, trigger_ids: Sequence[uuid.UUID]) -> None:
        if trigger_ids:
            self.reconciler.triggers(trigger_ids)


@contextmanager
def _stores(
    settings: Settings, db: Database | None, client: redis.Redis | None
) -> Iterator[tuple[Database, redis.Redis]]:
    """The caller's database and Redis client, or ones of our own that are closed afterwards."""
    database = db or Database(settings.database_url)
    rclient = client or make_redis(settings.redis_url)
    try:
        yield database, rclient
    finally:
        if client is None:
            rclient.close()
        if db is None:
            database.dispose()


def full_sync(
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
    db: Database | None = None,
    client: redis.Redis | None = None,
) -> SyncReport:
    """``woow sync --full``: drain pending fire bookkeeping, then a full reconcile."""
    from .bookkeeping import drain_fired

    with _stores(settings, db, client) as (database, rclient):
        reconciler = Reconciler(settings, database, rclient)
        try:
            drain_fired(settings, database, rclient)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: cannot connect ({exc})") from exc
        return reconciler.full(progress)


def sync(
    settings: Settings,
    *,
    full: bool = False,
    since: datetime | None = None,
    progress: ProgressCallback | None = None,
    db: Database | None = None,
    client: redis.Redis | None = None,
) -> SyncReport:
    """``woow sync [--full]``.

    ``full=True``: :func:`full_sync`.  Otherwise an incremental pass over the triggers (and
    workflows) changed since ``since`` (default: the last ``full_reconcile_interval``), which turns
    into a full pass by itself when the number of entries differs from the number of enabled
    triggers (something was deleted or lost behind the reconciler's back).
    """
    if full:
        return full_sync(settings, progress=progress, db=db, client=client)
    with _stores(settings, db, client) as (database, rclient):
        reconciler = Reconciler(settings, database, rclient)
        start = since or reconciler.db_now() - timedelta(seconds=settings.full_reconcile_interval)
        report = reconciler.incremental(start)
        if report.drift_suspected:
            return full_sync(settings, progress=progress, db=database, client=rclient)
        return report


def incremental_since(previous_pass_start: datetime, margin: float = 60.0) -> datetime:
    """Where an incremental pass starts: a margin before the previous one (commits in flight, clock skew)."""
    return previous_pass_start - timedelta(seconds=margin)
