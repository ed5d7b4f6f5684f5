"""Use cases on workflows: create, update, delete, read, list, and the validation of a workflow body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from ..db.models import Trigger, Workflow
from ..engine.registry import validate_steps
from ..errors import Conflict, InvalidWorkflow
from ..views import WorkflowView
from .base import ServiceBase
from .validation import VISIBILITY_MARGIN, WORKFLOW_FIELDS, WorkflowInput, pydantic_error


class WorkflowOps(ServiceBase):
    # -- workflows ----------------------------------------------------------------------------
    def create_workflow(self, data: Mapping[str, Any] | WorkflowInput) -> WorkflowView:
        wf_in = self._validate_workflow(data)
        with self._session() as s:
            if self._workflow_named(s, wf_in.name, owner=wf_in.owner_user_id, any_owner=False) is not None:
                raise Conflict(f"name: a workflow named '{wf_in.name}' already exists", field="name")
            wf = Workflow(**wf_in.model_dump())
            s.add(wf)
            s.flush()
            return WorkflowView.of(wf)

    def update_workflow(self, ref: str, changes: Mapping[str, Any]) -> WorkflowView:
        unknown = sorted(set(changes) - WORKFLOW_FIELDS)
        if unknown:
            raise InvalidWorkflow(f"{unknown[0]}: unknown field", field=unknown[0])
        with self._session() as s:
            wf = self._workflow(s, ref)
            current = WorkflowView.of(wf).model_dump(include=WORKFLOW_FIELDS)
            current.update(changes)
            wf_in = self._validate_workflow(current)
            moved = wf_in.name != wf.name or wf_in.owner_user_id != wf.owner_user_id
            if moved and self._workflow_named(s, wf_in.name, owner=wf_in.owner_user_id, any_owner=False):
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

