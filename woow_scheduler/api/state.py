"""What the API's requests share (settings, database, Redis, the service) and who may see what."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import redis
from sqlalchemy import select

from ..db.models import Workflow
from ..db.session import Database
from ..errors import Ambiguous, NotFound
from ..keys import Keys
from ..service import Service
from ..settings import Settings
from ..tokens import Principal
from ..views import ExecutionView, TriggerView, WorkflowView


class _OfWorkflow(Protocol):
    @property
    def workflow_id(self) -> uuid.UUID: ...


_V = TypeVar("_V", bound=_OfWorkflow)

if TYPE_CHECKING:
    from celery import Celery


@dataclass
class ApiState:
    settings: Settings
    db: Database
    redis: redis.Redis
    service: Service
    owns_stores: bool = False
    _celery: Celery | None = None
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    def celery(self) -> Celery:
        """The Celery app used to publish manual runs (built on first use)."""
        with self._guard:
            if self._celery is None:
                from ..worker import get_app

                self._celery = get_app(self.settings)
            return self._celery

    def close(self) -> None:
        if self._celery is not None:
            self._celery.close()
        if self.owns_stores:
            self.db.dispose()
            self.redis.close()

    # -- ownership: a user sees and changes only the workflows they own, unless admin ---------
    def workflow_for(self, principal: Principal, ref: str) -> WorkflowView:
        """The workflow named by its full id or exact name, if ``principal`` may see it.

        Over HTTP, id prefixes are not accepted; a name is looked up among the caller's own
        workflows only (every workflow for an admin, who must use the id when two users chose the
        same name), and a workflow of another user is "not found" exactly like one that does not exist.
        """
        ref = ref.strip()
        missing = NotFound(f"workflow: '{ref}' not found")
        if not ref:
            raise missing
        try:
            ident: uuid.UUID | None = uuid.UUID(ref)
        except ValueError:
            ident = None
        with self.db.session() as s:
            if ident is not None:
                rows = list(s.scalars(select(Workflow).where(Workflow.id == ident)))
            else:
                q = select(Workflow).where(Workflow.name == ref)
                if not principal.is_admin:
                    q = q.where(Workflow.owner_user_id == principal.user_id)
                rows = list(s.scalars(q.limit(2)))
            views = [WorkflowView.of(row) for row in rows]
        if len(views) > 1:
            raise Ambiguous(f"workflow: '{ref}' names workflows of several users; use the workflow's id", field="id")
        if not views or not visible(principal, views[0].owner_user_id):
            raise missing
        return views[0]

    def trigger_for(self, principal: Principal, trigger_id: uuid.UUID) -> TriggerView:
        return self._owned(principal, "trigger", trigger_id, self.service.get_trigger)

    def execution_for(self, principal: Principal, execution_id: uuid.UUID) -> ExecutionView:
        return self._owned(principal, "execution", execution_id, self.service.get_execution)

    def _owned(self, principal: Principal, what: str, ident: uuid.UUID, get: Callable[[str], _V]) -> _V:
        """The object if the caller may see its workflow; otherwise the same 404 as a missing one."""
        missing = NotFound(f"{what}: '{ident}' not found")
        try:
            view = get(str(ident))
            owner = self.service.get_workflow(str(view.workflow_id)).owner_user_id
        except NotFound:
            raise missing from None
        if not visible(principal, owner):
            raise missing
        return view


def visible(principal: Principal, owner_user_id: str | None) -> bool:
    return principal.is_admin or (owner_user_id is not None and owner_user_id == principal.user_id)
