"""/calendars: named calendars shared by triggers (read: any user; write: admins only, since a
change re-plans every trigger that uses the calendar, whoever owns it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response

from ..service.calendars import CalendarView
from .auth import State, User
from .problems import Problem

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked token"},
    403: {"model": Problem, "description": "Only admins change calendars"},
    404: {"model": Problem, "description": "No such calendar"},
    422: {"model": Problem, "description": "Invalid calendar definition"},
}
_EXAMPLE = {"type": "holiday", "dates": ["2026-12-25"], "timezone": "Europe/Berlin", "base": {"type": "weekly"}}

router = APIRouter(prefix="/calendars", tags=["calendars"], responses=_ERRORS)


def _admin(user: Any) -> None:
    if not user.is_admin:
        raise HTTPException(403, "calendar: only admins create, change or delete calendars")


@router.get("", summary="All calendars, with the triggers that use each")
def list_calendars(state: State, user: User) -> list[dict[str, Any]]:
    return [v.to_json() for v in state.service.list_calendars()]


@router.get("/{name}", summary="One calendar")
def get_calendar(name: str, state: State, user: User) -> dict[str, Any]:
    return state.service.get_calendar(name).to_json()


@router.put(
    "/{name}",
    summary="Create or replace a calendar (its triggers are re-planned at once)",
    responses={409: {"model": Problem, "description": "Conflict"}},
)
def put_calendar(
    name: str,
    state: State,
    user: User,
    body: Annotated[dict[str, Any], Body(openapi_examples={"holiday": {"value": _EXAMPLE}})],
    response: Response,
) -> dict[str, Any]:
    _admin(user)
    names = {v.name for v in state.service.list_calendars()}
    view: CalendarView
    if name in names:
        view = state.service.update_calendar(name, body)
    else:
        view = state.service.add_calendar(name, body)
        response.status_code = 201
    return view.to_json()


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a calendar (refused while a trigger uses it)",
    responses={409: {"model": Problem, "description": "The calendar is in use"}},
)
def delete_calendar(name: str, state: State, user: User) -> Response:
    _admin(user)
    state.service.delete_calendar(name)
    return Response(status_code=204)
