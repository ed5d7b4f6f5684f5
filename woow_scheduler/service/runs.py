"""Use case: run a workflow now, outside its schedule (``woow workflow run``, ``POST /workflows/{id}/run``).

The front door passes the Celery app it already has; Celery is imported here only when a run is
asked for, so importing the service still loads no Celery.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..views import WorkflowView
from .workflows import WorkflowOps


class RunOps(WorkflowOps):
    def run_workflow(self, ref: str, *, app: Any, user_id: str | None = None) -> tuple[WorkflowView, uuid.UUID]:
        """Record a ``queued`` execution of the workflow ``ref`` and publish it on ``app``'s broker.

        Returns the workflow and the execution id.  Raises ``NotFound`` for an unknown workflow
        and ``StoreUnavailable`` when the broker refuses the message (the execution is then
        recorded ``failed``).
        """
        from ..messaging.publish import enqueue_manual_run

        view = self.get_workflow(ref)
        return view, enqueue_manual_run(app, self.db, self.settings, workflow=view, user_id=user_id)
