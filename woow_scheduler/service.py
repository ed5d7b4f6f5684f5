"""Use cases shared by the CLI and the HTTP API.

Every write is one transaction: invalid input raises a typed error from ``errors.py`` before
anything is written.  After a committed trigger change the live schedule is updated at once
through the :class:`~woow_scheduler.interfaces.ScheduleMirror` ("write-through"); if Redis is
down the change stays committed and the periodic reconcile repairs the schedule.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.orm import Session

from .db.models import Execution, Trigger, Workflow
from .db.session import Database
from .engine.registry import validate_steps
from .enums import ConcurrencyPolicy, ExecutionStatus, TriggerState
from .errors import Ambiguous, Conflict, InvalidInput, InvalidWorkflow, NotFound, StoreUnavailable
from .interfaces import ScheduleMirror
from .keys import Keys
from .settings import Settings
from .triggers import TriggerSpec, parse_trigger_spec
from .views import ExecutionView, TriggerView, WorkflowView

log = logging.getLogger(__name__)

#: A workflow's timeout must stay this far below the broker's visibility timeout (the time-limit
#: backstops and the final write run after the timeout itself).
VISIBILITY_MARGIN = 60

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$")
_HEX_PREFIX = re.compile(r"^[0-9a-fA-F-]{6,36}$")


_SPEC_ADAPTER: TypeAdapter[TriggerSpec] = TypeAdapter(TriggerSpec)


def spec_from_stored(data: Mapping[str, Any]) -> TriggerSpec:
    """Rebuild a trigger spec from its stored JSON (already validated when it was written)."""
    return _SPEC_ADAPTER.validate_python(dict(data))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            f"'{value}' is not a valid {what} name: 1-200 characters, letters, digits and _ . : @ -, "
            "starting with a letter or digit"
        )
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise ValueError(f"'{value}' looks like an id; choose a name that is not a UUID")


class WorkflowInput(BaseModel):
    """What a workflow is made of (CLI options, workflow files and API bodies are validated by this)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(default="", max_length=10_000)
    steps: list[dict[str, Any]] = Field(default_factory=list)
    concurrency: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    max_retries: int = Field(default=0, ge=0, le=100)
    retry_delay: float = Field(default=15.0, ge=0, le=86_400)
    retry_backoff: bool = False
    timeout: float | None = Field(default=None, gt=0, le=7 * 86_400)
    max_queue_wait: float | None = Field(default=None, gt=0)
    owner_user_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "workflow")


_WORKFLOW_FIELDS = set(WorkflowInput.model_fields)


def pydantic_error(exc: ValidationError, *, prefix: str = "") -> str:
    """The first problem of a pydantic error as one line: ``field: reason (got value)``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    path = ".".join(p for p in (prefix, loc) if p) or "input"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown field"
    if err["type"] == "missing":
        return f"{path}: is required"
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (str, int, float)) and repr(value) not in msg and str(value) not in msg:
        msg = f"{msg} (got {value!r})"
    return f"{path}: {msg}"


class Service:
    """The application's use cases.  One instance per process; cheap to build."""

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

    # -- workflows ----------------------------------------------------------------------------
    def create_workflow(self, data: Mapping[str, Any] | WorkflowInput) -> WorkflowView:
        wf_in = self._validate_workflow(data)
        with self._session() as s:
            if s.scalar(select(Workflow.id).where(Workflow.name == wf_in.name)) is not None:
                raise Conflict(f"name: a workflow named '{wf_in.name}' already exists", field="name")
            wf = Workflow(**wf_in.model_dump())
            s.add(wf)
            s.flush()
            return WorkflowView.of(wf)

    def update_workflow(self, ref: str, changes: Mapping[str, Any]) -> WorkflowView:
        unknown = sorted(set(changes) - _WORKFLOW_FIELDS)
        if unknown:
            raise InvalidWorkflow(f"{unknown[0]}: unknown field", field=unknown[0])
        with self._session() as s:
            wf = self._workflow(s, ref)
            current = WorkflowView.of(wf).model_dump(include=_WORKFLOW_FIELDS)
            current.update(changes)
            wf_in = self._validate_workflow(current)
            if wf_in.name != wf.name and s.scalar(select(Workflow.id).where(Workflow.name == wf_in.name)):
                raise Conflict(f"name: a workflow named '{wf_in.name}' already exists", field="name")
            for key, value in wf_in.model_dump().items():
                if getattr(wf, key) != value:
                    setattr(wf, key, value)
            s.flush()
            return WorkflowView.of(wf)

    def delete_workflow(self, ref: str) -> WorkflowView:
        with self._session() as s:
            wf = self._workflow(s, ref)
            view = WorkflowView.of(wf)
            trigger_ids = list(s.scalars(select(Trigger.id).where(Trigger.workflow_id == wf.id)))
            s.delete(wf)
        self._mirror(trigger_ids)
        return view

    def get_workflow(self, ref: str) -> WorkflowView:
        with self._session() as s:
            return WorkflowView.of(self._workflow(s, ref))

    def list_workflows(self, *, owner: str | None = None) -> list[WorkflowView]:
        with self._session() as s:
            q = select(Workflow).order_by(Workflow.name)
            if owner is not None:
                q = q.where(Workflow.owner_user_id == owner)
            return [WorkflowView.of(wf) for wf in s.scalars(q)]

    def _validate_workflow(self, data: Mapping[str, Any] | WorkflowInput) -> WorkflowInput:
        try:
            wf_in = data if isinstance(data, WorkflowInput) else WorkflowInput.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidWorkflow(pydantic_error(exc)) from None
        steps = validate_steps(wf_in.steps, self.settings)
        limit = self.settings.visibility_timeout - VISIBILITY_MARGIN
        if wf_in.timeout is not None and wf_in.timeout > limit:
            # the broker would hand a run that is still going to a second worker
            raise InvalidWorkflow(
                f"timeout: {wf_in.timeout:g}s is above WOOW_VISIBILITY_TIMEOUT ({self.settings.visibility_timeout}s) "
                f"minus {VISIBILITY_MARGIN}s; raise that setting on every worker or shorten the timeout",
                field="timeout",
            )
        return wf_in.model_copy(update={"steps": steps})

    # -- triggers -----------------------------------------------------------------------------
    def add_trigger(
        self,
        workflow_ref: str,
        spec: Mapping[str, Any],
        *,
        name: str | None = None,
        user_id: str | None = None,
        allow_past: bool = False,
    ) -> TriggerView:
        now = self.clock()
        parsed = parse_trigger_spec(spec, now=now, allow_past=allow_past)
        if name is not None:
            try:
                _check_name(name, "trigger")
            except ValueError as exc:
                raise InvalidInput(f"name: {exc}", field="name") from None
        with self._session() as s:
            wf = self._workflow(s, workflow_ref)
            trigger_name = name or self._default_trigger_name(s, wf.id, parsed)
            if s.scalar(select(Trigger.id).where(Trigger.workflow_id == wf.id, Trigger.name == trigger_name)):
                raise Conflict(f"name: workflow '{wf.name}' already has a trigger named '{trigger_name}'", field="name")
            tr = self._new_trigger(s, wf, trigger_name, parsed, now, user_id)
            view = TriggerView.of(tr, wf.name)
        self._mirror([view.id])
        return view

    def update_trigger(self, ref: str, spec: Mapping[str, Any], *, allow_past: bool = False) -> TriggerView:
        """Replace a trigger's spec; its fire count and last fire time are kept."""
        now = self.clock()
        parsed = parse_trigger_spec(spec, now=now, allow_past=allow_past)
        with self._session() as s:
            tr = self._trigger(s, ref)
            self._apply_spec(tr, parsed, now)
            tr.anchor_at = max(now, tr.anchor_at)
            if tr.state == TriggerState.COMPLETE and tr.next_fire_time is not None:
                tr.state = TriggerState.NORMAL
            tr.version += 1
            s.flush()
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id))
        self._mirror([view.id])
        return view

    def pause_trigger(self, ref: str) -> TriggerView:
        return self._set_state(ref, TriggerState.PAUSED, allowed_from={TriggerState.NORMAL, TriggerState.ERROR})

    def resume_trigger(self, ref: str) -> TriggerView:
        return self._set_state(ref, TriggerState.NORMAL, allowed_from={TriggerState.PAUSED, TriggerState.ERROR})

    def delete_trigger(self, ref: str) -> TriggerView:
        with self._session() as s:
            tr = self._trigger(s, ref)
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id))
            s.delete(tr)
        self._mirror([view.id])
        return view

    def get_trigger(self, ref: str) -> TriggerView:
        with self._session() as s:
            tr = self._trigger(s, ref)
            wf_name = self._workflow_name(s, tr.workflow_id)
            blocked = self._blocked({tr.workflow_id})
            return TriggerView.of(tr, wf_name, blocked=tr.workflow_id in blocked)

    def list_triggers(
        self, *, workflow: str | None = None, state: str | None = None, owner: str | None = None
    ) -> list[TriggerView]:
        with self._session() as s:
            q = select(Trigger, Workflow.name).join(Workflow, Workflow.id == Trigger.workflow_id)
            if workflow is not None:
                q = q.where(Trigger.workflow_id == self._workflow(s, workflow).id)
            if owner is not None:
                q = q.where(Workflow.owner_user_id == owner)
            wanted: TriggerState | None = None
            if state is not None:
                try:
                    wanted = TriggerState(state.upper())
                except ValueError:
                    raise InvalidInput(
                        f"state: '{state}' is not one of {', '.join(m.value for m in TriggerState)}", field="state"
                    ) from None
                if wanted != TriggerState.BLOCKED:
                    q = q.where(Trigger.state == wanted)
            rows = list(s.execute(q.order_by(Workflow.name, Trigger.name)))
            blocked = self._blocked({tr.workflow_id for tr, _ in rows})
            views = [TriggerView.of(tr, name, blocked=tr.workflow_id in blocked) for tr, name in rows]
        if wanted is not None:
            views = [v for v in views if v.state == wanted.value]
        return views

    def next_fire_times(self, ref: str, n: int = 10) -> list[datetime]:
        if not 1 <= n <= 1000:
            raise InvalidInput(f"n: {n} must be between 1 and 1000", field="n")
        with self._session() as s:
            tr = self._trigger(s, ref)
            spec = spec_from_stored(tr.spec)
            after = max(filter(None, (tr.previous_fire_time, tr.anchor_at, self.clock())))
        out: list[datetime] = []
        for t in spec.iter_fire_times(after):
            out.append(t)
            if len(out) >= n:
                break
        return out

    def _set_state(self, ref: str, target: TriggerState, *, allowed_from: set[TriggerState]) -> TriggerView:
        now = self.clock()
        with self._session() as s:
            tr = self._trigger(s, ref)
            if tr.state != target:
                if tr.state not in allowed_from:
                    raise InvalidInput(
                        f"state: trigger '{tr.name}' is {tr.state.value}; it cannot become {target.value}",
                        field="state",
                    )
                tr.state = target
                if target == TriggerState.NORMAL:
                    # fires missed while paused are not caught up (Quartz would misfire them)
                    tr.anchor_at = now
                    spec = spec_from_stored(tr.spec)
                    tr.next_fire_time = spec.next_fire_time(max(now, tr.previous_fire_time or now))
                    if tr.next_fire_time is None:
                        tr.state = TriggerState.COMPLETE
                tr.version += 1
                s.flush()
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id))
        self._mirror([view.id])
        return view

    def _new_trigger(
        self, s: Session, wf: Workflow, name: str, spec: TriggerSpec, now: datetime, user_id: str | None
    ) -> Trigger:
        """Insert a trigger; it is anchored at ``now`` (it never fires for earlier times)."""
        tr = Trigger(workflow_id=wf.id, name=name, created_by=user_id or wf.owner_user_id)
        self._apply_spec(tr, spec, now)
        tr.anchor_at = now
        tr.state = TriggerState.NORMAL if tr.next_fire_time else TriggerState.COMPLETE
        s.add(tr)
        s.flush()
        return tr

    @staticmethod
    def _apply_spec(tr: Trigger, spec: TriggerSpec, now: datetime) -> None:
        tr.type = spec.type
        tr.spec = spec.model_dump(mode="json")
        tr.timezone = spec.timezone
        tr.dst_policy = str(getattr(spec, "dst_policy", "wall_clock"))
        tr.misfire_policy = str(spec.misfire_policy)
        tr.start_at = spec.start_at
        tr.end_at = spec.end_at
        tr.repeat_count = getattr(spec, "repeat_count", None)
        tr.next_fire_time = spec.next_fire_time(max(now, tr.previous_fire_time or now))

    @staticmethod
    def _default_trigger_name(s: Session, workflow_id: uuid.UUID, spec: TriggerSpec) -> str:
        taken = set(s.scalars(select(Trigger.name).where(Trigger.workflow_id == workflow_id)))
        i = 1
        while f"{spec.type}-{i}" in taken:
            i += 1
        return f"{spec.type}-{i}"

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

    # -- declarative files --------------------------------------------------------------------
    def apply(
        self,
        docs: Sequence[Mapping[str, Any]],
        *,
        dry_run: bool = False,
        prune: bool = False,
        user_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Create or update workflows and their triggers by name, in ONE transaction.

        Returns the changes (``action`` create/update/delete, ``kind``, ``name``, ``fields``);
        unchanged objects are not listed, so applying the same file twice returns ``[]``.
        """
        now = self.clock()
        plan: list[dict[str, Any]] = []
        changed_triggers: list[uuid.UUID] = []
        try:
            self._apply_in_session(docs, plan, changed_triggers, now=now, dry_run=dry_run, prune=prune, user_id=user_id)
        except _DryRunDone:
            return plan
        self._mirror(changed_triggers)
        return plan

    def _apply_in_session(
        self,
        docs: Sequence[Mapping[str, Any]],
        plan: list[dict[str, Any]],
        changed_triggers: list[uuid.UUID],
        *,
        now: datetime,
        dry_run: bool,
        prune: bool,
        user_id: str | None,
    ) -> None:
        from .apply import trigger_entry_to_spec

        names_seen: set[str] = set()
        with self._session() as s:
            for i, raw in enumerate(docs):
                doc = dict(raw)
                entries = doc.pop("triggers", []) or []
                if not isinstance(entries, list):
                    raise InvalidInput(f"workflows[{i}].triggers: must be a list", field="triggers")
                doc.setdefault("owner_user_id", user_id)
                wf_in = self._validate_workflow(doc)
                if wf_in.name in names_seen:
                    raise Conflict(f"workflows[{i}].name: '{wf_in.name}' appears twice in the file", field="name")
                names_seen.add(wf_in.name)
                wf = s.scalar(select(Workflow).where(Workflow.name == wf_in.name))
                if wf is None:
                    wf = Workflow(**wf_in.model_dump())
                    s.add(wf)
                    s.flush()
                    plan.append({"action": "create", "kind": "workflow", "name": wf.name, "fields": []})
                else:
                    new = wf_in.model_dump()
                    if "owner_user_id" not in raw and user_id is None:
                        new["owner_user_id"] = wf.owner_user_id
                    fields = sorted(k for k, v in new.items() if getattr(wf, k) != v)
                    for k in fields:
                        setattr(wf, k, new[k])
                    if fields:
                        plan.append({"action": "update", "kind": "workflow", "name": wf.name, "fields": fields})
                existing = {t.name: t for t in s.scalars(select(Trigger).where(Trigger.workflow_id == wf.id))}
                listed: set[str] = set()
                for j, entry in enumerate(entries):
                    where = f"workflows[{i}].triggers[{j}]"
                    name, spec_data = trigger_entry_to_spec(entry, where)
                    name = name or f"{spec_data['type']}-{j + 1}"
                    try:
                        _check_name(name, "trigger")
                    except ValueError as exc:
                        raise InvalidInput(f"{where}.name: {exc}", field="name") from None
                    if name in listed:
                        raise Conflict(f"{where}.name: '{name}' appears twice in workflow '{wf.name}'")
                    listed.add(name)
                    old = existing.get(name)
                    if old is not None and old.type == "interval" and "start_at" not in spec_data:
                        spec_data["start_at"] = old.spec.get("start_at")  # keep the anchor
                    try:
                        parsed = parse_trigger_spec(spec_data, now=now, allow_past=old is not None)
                    except InvalidInput as exc:
                        raise type(exc)(f"{where}.{exc}", field=exc.field) from None
                    full = f"{wf.name}/{name}"
                    if old is None:
                        tr = self._new_trigger(s, wf, name, parsed, now, user_id)
                        changed_triggers.append(tr.id)
                        plan.append({"action": "create", "kind": "trigger", "name": full, "fields": []})
                    elif parsed.model_dump(mode="json") != old.spec:
                        fields = sorted(k for k, v in parsed.model_dump(mode="json").items() if old.spec.get(k) != v)
                        self._apply_spec(old, parsed, now)
                        old.anchor_at = max(now, old.anchor_at)
                        old.version += 1
                        changed_triggers.append(old.id)
                        plan.append({"action": "update", "kind": "trigger", "name": full, "fields": fields})
                if prune:
                    for name, old in existing.items():
                        if name not in listed:
                            changed_triggers.append(old.id)
                            s.delete(old)
                            plan.append(
                                {"action": "delete", "kind": "trigger", "name": f"{wf.name}/{name}", "fields": []}
                            )
            if dry_run:
                raise _DryRunDone  # rolls the transaction back

    # -- history ------------------------------------------------------------------------------
    def history(
        self,
        *,
        workflow: str | None = None,
        trigger: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        owner: str | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[ExecutionView]:
        """Executions newest first; ``before`` = ``(created_at, id)`` of the last row of a previous page."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit: {limit} must be between 1 and 10000", field="limit")
        with self._session() as s:
            q = select(Execution, Workflow.name).join(Workflow, Workflow.id == Execution.workflow_id)
            if workflow is not None:
                q = q.where(Execution.workflow_id == self._workflow(s, workflow).id)
            if trigger is not None:
                q = q.where(Execution.trigger_id == self._trigger(s, trigger).id)
            if status is not None:
                try:
                    q = q.where(Execution.status == ExecutionStatus(status.lower()))
                except ValueError:
                    raise InvalidInput(
                        f"status: '{status}' is not one of {', '.join(m.value for m in ExecutionStatus)}",
                        field="status",
                    ) from None
            if since is not None:
                if since.tzinfo is None:
                    raise InvalidInput("since: needs a time zone offset (e.g. 2026-01-01T00:00:00Z)", field="since")
                q = q.where(Execution.created_at >= since)
            if owner is not None:
                q = q.where(Workflow.owner_user_id == owner)
            if before is not None:
                q = q.where(tuple_(Execution.created_at, Execution.id) < tuple_(*before))
            q = q.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(limit)
            return [ExecutionView.of(ex, name) for ex, name in s.execute(q)]

    def get_execution(self, ref: str) -> ExecutionView:
        with self._session() as s:
            ex = _by_id_or_prefix(s, Execution, ref, "execution")
            return ExecutionView.of(ex, self._workflow_name(s, ex.workflow_id))

    def counts(self) -> dict[str, Any]:
        """Triggers by state and executions running / failed in the last hour (for `woow status`)."""
        hour_ago = datetime.fromtimestamp(self.clock().timestamp() - 3600, UTC)
        with self._session() as s:
            by_state = {str(k): v for k, v in s.execute(select(Trigger.state, func.count()).group_by(Trigger.state))}
            running = s.scalar(
                select(func.count()).select_from(Execution).where(Execution.status == ExecutionStatus.RUNNING)
            )
            failed = s.scalar(
                select(func.count())
                .select_from(Execution)
                .where(
                    Execution.status.in_([ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT]),
                    Execution.created_at >= hour_ago,
                )
            )
        return {"triggers_by_state": by_state, "executions_running": running or 0, "failed_last_hour": failed or 0}

    # -- lookups ------------------------------------------------------------------------------
    def _workflow(self, s: Session, ref: str) -> Workflow:
        wf = s.scalar(select(Workflow).where(Workflow.name == ref))
        if wf is not None:
            return wf
        found: Workflow = _by_id_or_prefix(s, Workflow, ref, "workflow")
        return found

    def _trigger(self, s: Session, ref: str) -> Trigger:
        if "/" in ref:  # WORKFLOW/TRIGGER_NAME
            wf_ref, _, tr_name = ref.rpartition("/")
            wf = self._workflow(s, wf_ref)
            tr = s.scalar(select(Trigger).where(Trigger.workflow_id == wf.id, Trigger.name == tr_name))
            if tr is None:
                raise NotFound(f"trigger: workflow '{wf.name}' has no trigger named '{tr_name}'")
            return tr
        try:
            found: Trigger = _by_id_or_prefix(s, Trigger, ref, "trigger")
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


def _by_id_or_prefix(s: Session, model: Any, ref: str, what: str) -> Any:
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


class _DryRunDone(Exception):
    """Raised inside the apply transaction to roll a dry run back."""


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
