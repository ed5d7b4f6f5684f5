"""/triggers/{id}: one trigger of a workflow you own (addressed by its id)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..errors import InvalidTriggerSpec
from ..service.apply import trigger_entry_to_spec
from ..views import IsoTime, TriggerView
from .auth import State, User
from .live import live_triggers
from .models import SCHEDULE_EXAMPLES, FireTimes
from .problems import Problem

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked token"},
    404: {"model": Problem, "description": "No such trigger (or not yours)"},
    422: {"model": Problem, "description": "Invalid input or a state change that is not allowed"},
}

router = APIRouter(prefix="/triggers", tags=["triggers"], responses=_ERRORS)


@router.get("/{id}", summary="One trigger with state and live previous/next fire times")
def get_trigger(id: uuid.UUID, state: State, user: User) -> TriggerView:
    return live_triggers(state.redis, state.keys, [state.trigger_for(user, id)])[0]


@router.put(
    "/{id}",
    summary="Replace a trigger's schedule",
    description="The body is a whole schedule in the vocabulary of `POST /workflows/{id}/schedule`; "
    "fire count and last fire time are kept. A COMPLETE trigger whose new schedule has a fire ahead "
    "is NORMAL again; a paused one stays paused.",
)
def replace_trigger(
    id: uuid.UUID,
    state: State,
    user: User,
    body: Annotated[dict[str, Any], Body(openapi_examples=SCHEDULE_EXAMPLES)],
) -> TriggerView:
    current = state.trigger_for(user, id)
    name, spec = trigger_entry_to_spec(body, "body")
    if name is not None and name != current.name:
        raise InvalidTriggerSpec(f"name: a trigger keeps its name ('{current.name}'); leave it out", field="name")
    return state.service.update_trigger(str(id), spec)


@router.post("/{id}/pause", summary="Pause a trigger (no fires until it is resumed)")
def pause_trigger(id: uuid.UUID, state: State, user: User) -> TriggerView:
    state.trigger_for(user, id)
    return state.service.pause_trigger(str(id))


@router.post("/{id}/resume", summary="Resume a paused trigger (fires missed while paused are not caught up)")
def resume_trigger(id: uuid.UUID, state: State, user: User) -> TriggerView:
    state.trigger_for(user, id)
    return state.service.resume_trigger(str(id))


@router.delete("/{id}", status_code=204, summary="Delete a trigger (its history is kept)")
def delete_trigger(id: uuid.UUID, state: State, user: User) -> Response:
    state.trigger_for(user, id)
    state.service.delete_trigger(str(id))
    return Response(status_code=204)


@router.get("/{id}/next", summary="The trigger's next n fire times (UTC)")
def next_fire_times(id: uuid.UUID, state: State, user: User, n: Annotated[int, Query(ge=1, le=1000)] = 10) -> FireTimes:
    state.trigger_for(user, id)
    return FireTimes(trigger_id=id, fire_times=state.service.next_fire_times(str(id), n))


class BackfillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(alias="from", description="Window start, inclusive (with an offset)")
    end: AwareDatetime = Field(alias="to", description="Window end, inclusive")
    dry_run: bool = False
    limit: int = Field(default=1000, ge=1, le=100_000)


class BackfillResult(BaseModel):
    trigger_id: uuid.UUID
    dry_run: bool
    fires: list[IsoTime]


@router.post("/{id}/backfill", summary="Enqueue the window's nominal fires that have no execution yet")
def backfill(id: uuid.UUID, body: BackfillRequest, state: State, user: User) -> BackfillResult:
    from ..messaging.publish import enqueue_fire

    state.trigger_for(user, id)
    view, fires = state.service.backfill_fires(str(id), body.start, body.end, limit=body.limit)
    if not body.dry_run:
        wf = state.service.get_workflow(str(view.workflow_id))
        for fire in fires:
            enqueue_fire(
                state.celery(),
                state.settings,
                workflow_id=view.workflow_id,
                workflow_name=view.workflow,
                trigger_id=view.id,
                user_id=view.created_by,
                scheduled_for=fire,
                timeout=wf.timeout,
                backfill=True,
            )
    return BackfillResult(trigger_id=id, dry_run=body.dry_run, fires=fires)
