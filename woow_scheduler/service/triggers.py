"""Use cases on triggers: add, change, pause, resume, delete, read, list and preview fire times."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..calendars import Calendar, parse_calendar
from ..db import trigger_state
from ..db.models import CalendarRow, Execution, Trigger, Workflow
from ..enums import TriggerState
from ..errors import Conflict, InvalidInput, InvalidTriggerSpec
from ..labels import check_labels, matches
from ..triggers import TriggerSpec, parse_trigger_spec, spec_from_stored
from ..views import TriggerView
from .base import ServiceBase
from .calendars import calendar_of
from .validation import check_name


class TriggerOps(ServiceBase):
    # -- triggers -----------------------------------------------------------------------------
    def add_trigger(
        self,
        workflow_ref: str,
        spec: Mapping[str, Any],
        *,
        name: str | None = None,
        user_id: str | None = None,
        allow_past: bool = False,
        calendar: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> TriggerView:
        return self.add_trigger_with_preview(
            workflow_ref,
            spec,
            name=name,
            user_id=user_id,
            allow_past=allow_past,
            calendar=calendar,
            labels=labels,
            preview=0,
        )[0]

    def add_trigger_with_preview(
        self,
        workflow_ref: str,
        spec: Mapping[str, Any],
        *,
        name: str | None = None,
        user_id: str | None = None,
        allow_past: bool = False,
        calendar: str | None = None,
        labels: Mapping[str, str] | None = None,
        preview: int = 10,
    ) -> tuple[TriggerView, list[datetime]]:
        """Add a trigger and compute its next ``preview`` fire times in the same transaction: a
        spec whose fire times cannot be computed is refused and nothing is written. ``calendar``
        names a calendar whose excluded times the trigger skips."""
        now = self.clock()
        parsed = parse_trigger_spec(spec, now=now, allow_past=allow_past)
        label_map = check_labels(labels or {})
        if name is not None:
            try:
                check_name(name, "trigger")
            except ValueError as exc:
                raise InvalidInput(f"name: {exc}", field="name") from None
        with self._session() as s:
            wf = self._workflow(s, workflow_ref)
            trigger_name = name or self._default_trigger_name(s, wf.id, parsed)
            if s.scalar(select(Trigger.id).where(Trigger.workflow_id == wf.id, Trigger.name == trigger_name)):
                raise Conflict(f"name: workflow '{wf.name}' already has a trigger named '{trigger_name}'", field="name")
            cal_row = None
            if calendar is not None:
                cal_row = s.scalar(select(CalendarRow).where(CalendarRow.name == calendar))
                if cal_row is None:
                    raise InvalidInput(f"calendar: '{calendar}' not found (woow calendar list)", field="calendar")
            tr = self._new_trigger(s, wf, trigger_name, parsed, now, user_id, cal_row)
            tr.labels = label_map
            s.flush()
            view = TriggerView.of(tr, wf.name, calendar=_calendar_name(s, tr))
            fire_times: list[datetime] = []
            if preview and tr.next_fire_time is not None:
                try:
                    stored = spec_from_stored(tr.spec)
                    after = max(filter(None, (tr.previous_fire_time, tr.anchor_at, now)))
                    fire_times = list(itertools.islice(stored.iter_fire_times(after, calendar_of(s, tr)), preview))
                except (OverflowError, ValueError, OSError) as exc:  # rolls the insert back
                    raise InvalidTriggerSpec(f"spec: its fire times cannot be computed ({exc})", field="spec") from None
        self._mirror([view.id])
        return view, fire_times

    def update_trigger(self, ref: str, spec: Mapping[str, Any], *, allow_past: bool = False) -> TriggerView:
        """Replace a trigger's spec; its fire count and last fire time are kept."""
        now = self.clock()
        parsed = parse_trigger_spec(spec, now=now, allow_past=allow_past)
        with self._session() as s:
            tr = self._trigger(s, ref)
            trigger_state.respecify(tr, parsed, now, calendar_of(s, tr))
            s.flush()
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id), calendar=_calendar_name(s, tr))
        self._mirror([view.id])
        return view

    def pause_trigger(self, ref: str) -> TriggerView:
        return self._set_state(ref, TriggerState.PAUSED)

    def resume_trigger(self, ref: str) -> TriggerView:
        return self._set_state(ref, TriggerState.NORMAL)

    def delete_trigger(self, ref: str) -> TriggerView:
        with self._session() as s:
            tr = self._trigger(s, ref)
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id), calendar=_calendar_name(s, tr))
            s.delete(tr)
        self._mirror([view.id])
        return view

    def get_trigger(self, ref: str) -> TriggerView:
        with self._session() as s:
            tr = self._trigger(s, ref)
            wf_name = self._workflow_name(s, tr.workflow_id)
            blocked = self._blocked({tr.workflow_id})
            return TriggerView.of(tr, wf_name, calendar=_calendar_name(s, tr), blocked=tr.workflow_id in blocked)

    def list_triggers(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        owner: str | None = None,
        labels: Mapping[str, str] | None = None,
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
            views = [
                TriggerView.of(tr, name, calendar=_calendar_name(s, tr), blocked=tr.workflow_id in blocked)
                for tr, name in rows
            ]
        if wanted is not None:
            views = [v for v in views if v.state == wanted.value]
        if labels:
            views = [v for v in views if matches(v.labels, labels)]
        return views

    def set_triggers_state(
        self,
        target: TriggerState,
        *,
        labels: Mapping[str, str] | None = None,
        workflow: str | None = None,
        all_triggers: bool = False,
    ) -> list[TriggerView]:
        """Pause (or resume) every trigger with these labels, of a workflow, or all, in one transaction.

        Triggers already in the target state, or in a state that cannot change to it, are left
        alone; the changed ones are returned (and mirrored to RedBeat at once).
        """
        chosen = [x for x in (labels, workflow, all_triggers or None) if x]
        if len(chosen) != 1:
            raise InvalidInput("selector: give exactly one of labels, workflow or all", field="selector")
        now = self.clock()
        changed: list[TriggerView] = []
        with self._session() as s:
            q = select(Trigger, Workflow.name).join(Workflow, Workflow.id == Trigger.workflow_id)
            if workflow is not None:
                q = q.where(Trigger.workflow_id == self._workflow(s, workflow).id)
            for tr, wf_name in s.execute(q.order_by(Workflow.name, Trigger.name).with_for_update(of=Trigger)):
                if labels and not matches(tr.labels, labels):
                    continue
                if not trigger_state.can_set_state(tr, target):  # already there, or not allowed from its state
                    continue
                trigger_state.set_state(tr, target, spec_from_stored(tr.spec), now, calendar_of(s, tr))
                s.flush()
                changed.append(TriggerView.of(tr, wf_name, calendar=_calendar_name(s, tr)))
        self._mirror([v.id for v in changed])
        return changed

    def next_fire_times(self, ref: str, n: int = 10) -> list[datetime]:
        if not 1 <= n <= 1000:
            raise InvalidInput(f"n: {n} must be between 1 and 1000", field="n")
        with self._session() as s:
            tr = self._trigger(s, ref)
            spec = spec_from_stored(tr.spec)
            cal = calendar_of(s, tr)
            after = max(filter(None, (tr.previous_fire_time, tr.anchor_at, self.clock())))
        out: list[datetime] = []
        for t in spec.iter_fire_times(after, cal):
            out.append(t)
            if len(out) >= n:
                break
        return out

    def backfill_fires(
        self, ref: str, start: datetime, end: datetime, *, limit: int = 1000
    ) -> tuple[TriggerView, list[datetime]]:
        """The trigger's nominal fires in [start, end] (its calendar honoured) that have no
        execution row yet, oldest first, at most ``limit``: what a backfill enqueues."""
        for name, value in (("from", start), ("to", end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise InvalidInput(f"{name}: {value.isoformat()} is naive; give an offset or a zone", field=name)
        if end < start:
            raise InvalidInput(f"to: {end.isoformat()} is before from {start.isoformat()}", field="to")
        if not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit: {limit} must be between 1 and 100000", field="limit")
        with self._session() as s:
            tr = self._trigger(s, ref)
            spec = spec_from_stored(tr.spec)
            cal = calendar_of(s, tr)
            done = set(
                s.scalars(
                    select(Execution.scheduled_for).where(
                        Execution.trigger_id == tr.id, Execution.scheduled_for >= start, Execution.scheduled_for <= end
                    )
                )
            )
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id), calendar=_calendar_name(s, tr))
        out: list[datetime] = []
        for fire in spec.iter_fire_times(start - timedelta(microseconds=1), cal):
            if fire > end or len(out) >= limit:
                break
            if fire not in done:
                out.append(fire)
        return view, out

    def _set_state(self, ref: str, target: TriggerState) -> TriggerView:
        now = self.clock()
        with self._session() as s:
            tr = self._trigger(s, ref)
            if trigger_state.set_state(tr, target, spec_from_stored(tr.spec), now, calendar_of(s, tr)):
                s.flush()
            view = TriggerView.of(tr, self._workflow_name(s, tr.workflow_id), calendar=_calendar_name(s, tr))
        self._mirror([view.id])
        return view

    def _new_trigger(
        self,
        s: Session,
        wf: Workflow,
        name: str,
        spec: TriggerSpec,
        now: datetime,
        user_id: str | None,
        calendar: CalendarRow | None = None,
    ) -> Trigger:
        """Insert a trigger; it is anchored at ``now`` (it never fires for earlier times)."""
        tr = Trigger(workflow_id=wf.id, name=name, created_by=user_id or wf.owner_user_id)
        cal: Calendar | None = None
        if calendar is not None:
            tr.calendar_id = calendar.id
            cal = parse_calendar(calendar.definition)
        trigger_state.place_new(tr, spec, now, cal)
        s.add(tr)
        s.flush()
        return tr

    @staticmethod
    def _default_trigger_name(s: Session, workflow_id: uuid.UUID, spec: TriggerSpec) -> str:
        taken = set(s.scalars(select(Trigger.name).where(Trigger.workflow_id == workflow_id)))
        i = 1
        while f"{spec.type}-{i}" in taken:
            i += 1
        return f"{spec.type}-{i}"


def _calendar_name(s: Session, tr: Trigger) -> str | None:
    """The name of the trigger's calendar (one lookup per calendar and session: the identity map)."""
    if tr.calendar_id is None:
        return None
    row = s.get(CalendarRow, tr.calendar_id)
    return row.name if row is not None else None
