"""Use cases on the run history: list executions, read one, and the counts of `woow status`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, tuple_

from ..db.models import Execution, Trigger, Workflow
from ..enums import ExecutionStatus
from ..errors import InvalidInput
from ..views import ExecutionView
from .base import ServiceBase, by_id_or_prefix


class HistoryOps(ServiceBase):
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
            ex = by_id_or_prefix(s, Execution, ref, "execution")
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

