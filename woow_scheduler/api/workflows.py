"""/workflows: CRUD, scheduling, manual runs and history of one user's workflows."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response

from ..errors import InvalidTriggerSpec
from ..service import WorkflowInput
from ..service.apply import trigger_entry_to_spec
from ..tokens import Principal
from ..views import TriggerView, WorkflowView
from .auth import State, User
from .guard import (
    check_min_interval,
    check_step_privileges,
    check_trigger_quota,
    check_workflow_quota,
    public_workflow,
    restore_secrets,
)
from .live import live_triggers
from .models import SCHEDULE_EXAMPLES, ExecutionPage, RunAccepted, ScheduledTrigger, decode_cursor, encode_cursor
from .problems import Problem

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked token"},
    403: {"model": Problem, "description": "The token may not do this (read-only, or a step needs a privilege)"},
    404: {"model": Problem, "description": "No such workflow (or not yours)"},
    422: {"model": Problem, "description": "Invalid input; `field` names it"},
}

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=_ERRORS)


def _owner_for_new(principal: Principal, requested: str | None) -> str:
    if requested is None or requested == principal.user_id:
        return principal.user_id
    if not principal.is_admin:
        raise HTTPException(403, "owner_user_id: only an admin token may give a workflow to another user")
    return requested


@router.post("", status_code=201, summary="Create a workflow", responses={409: {"model": Problem}})
def create_workflow(body: WorkflowInput, state: State, user: User) -> WorkflowView:
    owner = _owner_for_new(user, body.owner_user_id)
    owned = body.model_copy(update={"owner_user_id": owner})
    check_step_privileges(state, user, owner, owned.steps)
    check_workflow_quota(state, user, owner)
    return public_workflow(state, state.service.create_workflow(owned))


@router.get("", summary="List the workflows you own (all of them with an admin token)")
def list_workflows(state: State, user: User) -> list[WorkflowView]:
    return [
        public_workflow(state, v) for v in state.service.list_workflows(owner=None if user.is_admin else user.user_id)
    ]


@router.get(
    "/{id}",
    summary="One workflow, by id or name",
    description="Secret-looking step config values are shown as `***` (send `***` back in a PUT to keep them).",
)
def get_workflow(id: str, state: State, user: User) -> WorkflowView:
    return public_workflow(state, state.workflow_for(user, id))


@router.put(
    "/{id}",
    summary="Replace a workflow's definition",
    description="The body is a whole workflow (fields left out take their defaults); omitting "
    "`owner_user_id` keeps the owner. Triggers and history are kept.",
    responses={409: {"model": Problem}},
)
def replace_workflow(id: str, body: WorkflowInput, state: State, user: User) -> WorkflowView:
    current = state.workflow_for(user, id)
    changes = body.model_dump()
    if body.owner_user_id is None:
        changes["owner_user_id"] = current.owner_user_id
    elif body.owner_user_id != current.owner_user_id and not user.is_admin:
        raise HTTPException(403, "owner_user_id: only an admin token may give a workflow to another user")
    changes["steps"] = restore_secrets(state, changes.get("steps") or [], current.steps)
    check_step_privileges(state, user, changes["owner_user_id"], changes["steps"])
    return public_workflow(state, state.service.update_workflow(str(current.id), changes))


@router.delete("/{id}", status_code=204, summary="Delete a workflow with its triggers and history")
def delete_workflow(id: str, state: State, user: User) -> Response:
    current = state.workflow_for(user, id)
    state.service.delete_workflow(str(current.id))
    return Response(status_code=204)


@router.post(
    "/{id}/schedule",
    status_code=201,
    summary="Add a trigger (cron, interval or once) to a workflow",
    description="The body takes the CLI's and workflow files' vocabulary (`cron`/`every`/`at`, `tz`, "
    "`misfire`, `repeat`, `start`, `end`) or the stored spec form (`type`, `expression`, `timezone`, "
    "...), plus an optional `name`. The trigger is written to PostgreSQL and to the live schedule; "
    "the response carries its next 10 fire times.",
    responses={409: {"model": Problem, "description": "The workflow already has a trigger of that name"}},
)
def schedule_workflow(
    id: str,
    state: State,
    user: User,
    body: Annotated[dict[str, Any], Body(openapi_examples=SCHEDULE_EXAMPLES)],
) -> ScheduledTrigger:
    workflow = state.workflow_for(user, id)
    name, spec = trigger_entry_to_spec(body, "body")
    if name is not None and not isinstance(body.get("name"), str):
        raise InvalidTriggerSpec("name: must be a string", field="name")
    # checked before anything is written: fire times computable, not too often, quota
    check_min_interval(state, user, spec)
    check_trigger_quota(state, user, workflow)
    # the trigger and its preview in one transaction: no trigger is left behind a refused preview
    view, fire_times = state.service.add_trigger_with_preview(
        str(workflow.id), spec, name=name, user_id=user.user_id, preview=10
    )
    return ScheduledTrigger(**view.model_dump(), next_fire_times=fire_times)


@router.get("/{id}/triggers", summary="The workflow's triggers with state and live previous/next fire times")
def list_workflow_triggers(id: str, state: State, user: User) -> list[TriggerView]:
    workflow = state.workflow_for(user, id)
    views = state.service.list_triggers(workflow=str(workflow.id))
    return live_triggers(state.redis, state.keys, views)


@router.post(
    "/{id}/run",
    status_code=202,
    summary="Run the workflow now (returns the execution id)",
    responses={503: {"model": Problem, "description": "The broker is unreachable"}},
)
def run_workflow(id: str, state: State, user: User) -> RunAccepted:
    from ..messaging.publish import enqueue_manual_run

    workflow = state.workflow_for(user, id)
    execution_id = enqueue_manual_run(state.celery(), state.db, state.settings, workflow=workflow, user_id=user.user_id)
    return RunAccepted(execution_id=execution_id, workflow_id=workflow.id)


@router.get("/{id}/executions", summary="The workflow's execution history, newest first (cursor pagination)")
def list_executions(
    id: str,
    state: State,
    user: User,
    status: Annotated[
        str | None, Query(description="queued, running, succeeded, failed, skipped, retrying or timed_out")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> ExecutionPage:
    workflow = state.workflow_for(user, id)
    before = decode_cursor(cursor) if cursor else None
    rows = state.service.history(workflow=str(workflow.id), status=status, limit=limit + 1, before=before)
    items = rows[:limit]
    more = len(rows) > limit
    return ExecutionPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)
