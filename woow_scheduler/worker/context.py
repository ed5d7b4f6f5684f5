"""Per-process state of a worker: its stores (built after the fork) and the definitions it keeps."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import redis
from celery import Celery
from sqlalchemy.engine import Connection, Engine

from ..db.session import Database
from ..keys import Keys
from ..redis_store import make_redis
from ..settings import Settings
from . import history as h

log = logging.getLogger("woow.worker")

DEFINITION_MAX_AGE = 60.0  # seconds a kept workflow definition is trusted before it is read again
DEFINITION_CACHE_SIZE = 4096


class WorkflowCache:
    """Workflow definitions a worker process keeps between fires.

    Never trusted blindly: a scheduled fire is inserted only if the workflow's ``updated_at`` still
    equals the kept one (:func:`history.insert_fire_checked`), so an edit takes effect on the very
    next claim; manual runs, retries and queued fires always read the definition afresh.  Entries
    are dropped after :data:`DEFINITION_MAX_AGE` seconds in case a row was edited by hand without
    touching ``updated_at``.
    """

    def __init__(self, size: int = DEFINITION_CACHE_SIZE, max_age: float = DEFINITION_MAX_AGE) -> None:
        self.size = size
        self.max_age = max_age
        self._items: OrderedDict[uuid.UUID, tuple[h.WorkflowDef, float]] = OrderedDict()

    def get(self, workflow_id: uuid.UUID) -> h.WorkflowDef | None:
        found = self._items.get(workflow_id)
        if found is None:
            return None
        if time.monotonic() - found[1] > self.max_age:
            del self._items[workflow_id]
            return None
        return found[0]

    def put(self, wf: h.WorkflowDef) -> None:
        self._items[wf.id] = (wf, time.monotonic())
        self._items.move_to_end(wf.id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def discard(self, workflow_id: uuid.UUID) -> None:
        self._items.pop(workflow_id, None)


@dataclass
class WorkerContext:
    """Stores of one worker process, built lazily in that process (never shared across a fork)."""

    pid: int
    settings: Settings
    db: Database
    redis: redis.Redis
    keys: Keys
    hostname: str
    workflows: WorkflowCache = field(default_factory=WorkflowCache)
    kept_conn: Connection | None = None  # the pooled connection kept between runs (keep_conn)

    @property
    def engine(self) -> Engine:
        """The worker's engine (autocommit for the whole pool)."""
        return self.db.engine

    def keep_conn(self, conn: Connection) -> None:
        """Keep ``conn`` for this process's next run, or give it back to the pool.

        Kept only on PostgreSQL, in the process that built this context, when the connection is
        sound and no other is kept: the pool is autocommit, so a connection between runs holds no
        transaction, no lock and no session state (the check-in's reset was a no-op ``rollback``),
        and a connection that broke while kept fails the next run's first statement exactly as a
        broken pooled one did (no pre-ping either way), which closes and invalidates it.
        """
        if (
            self.kept_conn is None
            and os.getpid() == self.pid
            and conn.dialect.name == "postgresql"
            and not conn.invalidated
            and not conn.closed
            and not conn.in_transaction()
        ):
            self.kept_conn = conn
        else:
            conn.close()

    def take_kept_conn(self) -> Connection | None:
        conn = self._pop_kept_conn()
        if conn is not None and os.getpid() != self.pid:  # pragma: no cover - contexts are per process
            return None
        return conn

    def _pop_kept_conn(self) -> Connection | None:
        """The kept connection, no longer kept (whichever process asks: closing is the caller's choice)."""
        conn, self.kept_conn = self.kept_conn, None
        return conn

    def close(self) -> None:
        conn = self._pop_kept_conn()
        if conn is not None:
            conn.close()
        self.db.dispose()
        self.redis.close()


_contexts: dict[int, WorkerContext] = {}


@atexit.register
def _close_kept_connections() -> None:
    """Close the connections this process kept between runs (a clean disconnect at exit)."""
    pid = os.getpid()
    for ctx in list(_contexts.values()):
        conn = ctx._pop_kept_conn()
        if conn is not None and ctx.pid == pid:
            with contextlib.suppress(Exception):
                conn.close()


def worker_context(settings: Settings) -> WorkerContext:
    """This process's context for ``settings`` (rebuilt after a fork)."""
    pid = os.getpid()
    key = id(settings)
    ctx = _contexts.get(key)
    if ctx is None or ctx.pid != pid:
        # pre-ping would add a round trip to every execution; a dead pooled connection raises a
        # disconnect error instead, which invalidates the pool and retries the task
        # autocommit for the whole pool (every statement here is its own transaction): set per
        # checkout instead, it cost an isolation-level switch and reset on every statement
        db = Database(settings.database_url, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
        ctx = WorkerContext(
            pid=pid,
            settings=settings,
            db=db,
            redis=make_redis(settings.redis_url),
            keys=Keys(settings.key_prefix),
            hostname=f"{socket.gethostname()}:{pid}",
        )
        _contexts[key] = ctx
        if settings.visibility_timeout <= 2 * settings.lock_ttl:
            log.warning(
                "visibility_timeout (%ss) should be well above lock_ttl (%ss): a redelivered fire waits "
                "for its dead run's lock to expire",
                settings.visibility_timeout,
                settings.lock_ttl,
            )
    return ctx


def settings_of(app: Celery) -> Settings:
    settings = getattr(app.conf, "woow_settings", None)
    if not isinstance(settings, Settings):
        raise RuntimeError("this Celery app was not built by woow_scheduler (app.conf.woow_settings missing)")
    return settings
