"""What every use case stands on: the service's state, its guarded sessions, the write-through to
the schedule mirror and the lookups of workflows, triggers and executions by name, id or id prefix."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.orm import Session

from ..db.models import Trigger, Workflow
from ..db.session import Database
from ..errors import Ambiguous, Conflict, NotFound, StoreUnavailable
from ..interfaces import ScheduleMirror
from ..keys import Keys
from ..settings import Settings

log = logging.getLogger("woow_scheduler.service")

_HEX_PREFIX = re.compile(r"^[0-9a-fA-F-]{6,36}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceBase:
    """State and plumbing shared by the use cases (see :class:`woow_scheduler.service.Service`)."""


    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        mirror: ScheduleMirror | None = None,
        redis_client: redis.Redis | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.mirror = mirror
        self.redis = redis_client
        self.keys = Keys(settings.key_prefix)
        self.clock = clock

    # -- plumbing -----------------------------------------------------------------------------
    def _session(self) -> Any:
        return _GuardedSession(self.db)

    def _mirror(self, trigger_ids: Sequence[uuid.UUID]) -> None:
        if not trigger_ids or self.mirror is None:
            return
        try:
            self.mirror.triggers_changed(list(trigger_ids))
        except Exception as exc:  # the change is committed; the reconciler repairs Redis
            log.warning(
                "schedule not updated in Redis (%s); the next reconcile will repair it",
                exc,
                extra={"trigger_ids": [str(t) for t in trigger_ids]},
            )

    def _blocked(self, workflow_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Workflows whose lock is held right now (their NORMAL triggers show BLOCKED)."""
        ids = list(workflow_ids)
        if not ids or self.redis is None:
            return set()
        try:
            pipe = self.redis.pipeline(transaction=False)
            for wid in ids:
                pipe.exists(self.keys.workflow_lock(wid))
            return {wid for wid, held in zip(ids, pipe.execute(), strict=True) if held}
        except redis.RedisError as exc:
            log.warning("cannot read workflow locks from Redis (%s); BLOCKED not shown", exc)
            return set()

    # -- lookups ------------------------------------------------------------------------------
    def _workflow(self, s: Session, ref: str) -> Workflow:
        named = self._workflow_named(s, ref)
        if named is not None:
            return named
        found: Workflow = by_id_or_prefix(s, Workflow, ref, "workflow")
        return found

    @staticmethod
    def _workflow_named(s: Session, name: str, *, owner: str | None = None, any_owner: bool = True) -> Workflow | None:
        """The workflow called ``name`` (names are unique per owner): of ``owner`` (``None``: the
        operator's) unless ``any_owner``, when a name two owners chose is ambiguous."""
        q = select(Workflow).where(Workflow.name == name)
        if not any_owner:
            q = q.where(Workflow.owner_user_id.is_(None) if owner is None else Workflow.owner_user_id == owner)
        found = list(s.scalars(q.limit(2)))
        if len(found) > 1:
            raise Ambiguous(f"workflow: several users have a workflow named '{name}'; use its id", field="workflow")
        return found[0] if found else None

    def _trigger(self, s: Session, ref: str) -> Trigger:
        if "/" in ref:  # WORKFLOW/TRIGGER_NAME
            wf_ref, _, tr_name = ref.rpartition("/")
            wf = self._workflow(s, wf_ref)
            tr = s.scalar(select(Trigger).where(Trigger.workflow_id == wf.id, Trigger.name == tr_name))
            if tr is None:
                raise NotFound(f"trigger: workflow '{wf.name}' has no trigger named '{tr_name}'")
            return tr
        try:
            found: Trigger = by_id_or_prefix(s, Trigger, ref, "trigger")
            return found
        except NotFound:
            named = list(s.scalars(select(Trigger).where(Trigger.name == ref).limit(2)))
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                raise Ambiguous(
                    f"trigger: several workflows have a trigger named '{ref}'; use its id or WORKFLOW/{ref}",
                    field="trigger",
                ) from None
            raise

    @staticmethod
    def _workflow_name(s: Session, workflow_id: uuid.UUID) -> str:
        return s.scalar(select(Workflow.name).where(Workflow.id == workflow_id)) or "?"



def by_id_or_prefix(s: Session, model: Any, ref: str, what: str) -> Any:
    """Find by full UUID, or by a unique id prefix of at least 6 hex digits (as shown in tables)."""
    ref = ref.strip()
    try:
        obj = s.get(model, uuid.UUID(ref))
    except ValueError:
        obj = None
        if _HEX_PREFIX.match(ref):
            hexpref = ref.replace("-", "").lower()
            # UUIDs are stored as native uuid (PostgreSQL) or 32 hex chars (SQLite)
            col = func.replace(func.cast(model.id, _text_type()), "-", "")
            found = list(s.scalars(select(model).where(col.like(f"{hexpref}%")).limit(2)))
            if len(found) > 1:
                raise Ambiguous(f"{what}: id prefix '{ref}' matches several; give more digits", field=what) from None
            obj = found[0] if found else None
    if obj is None:
        raise NotFound(f"{what}: '{ref}' not found")
    return obj


def _text_type() -> Any:
    from sqlalchemy import String

    return String()


class _GuardedSession:
    """``db.session()`` that turns connection failures and constraint races into typed errors."""

    def __init__(self, db: Database) -> None:
        self._cm = db.session()

    def __enter__(self) -> Session:
        try:
            return self._cm.__enter__()
        except SAOperationalError as exc:
            raise StoreUnavailable(f"database: cannot connect ({_first_line(exc)})") from exc

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool | None:
        try:
            handled = self._cm.__exit__(et, ev, tb)
        except IntegrityError as exc:
            raise Conflict(f"conflict: {_first_line(exc)}") from exc
        except SAOperationalError as exc:
            raise StoreUnavailable(f"database: {_first_line(exc)}") from exc
        if isinstance(ev, SAOperationalError):  # raised inside the block, e.g. on first connect
            raise StoreUnavailable(f"database: cannot connect ({_first_line(ev)})") from ev
        return handled


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
