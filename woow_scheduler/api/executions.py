"""/executions/{id}: one run of a workflow you own."""

import uuid
from typing import Any

from fastapi import APIRouter

from ..views import ExecutionView
from .auth import State, User
from .problems import Problem

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked token"},
    404: {"model": Problem, "description": "No such execution (or not yours)"},
    422: {"model": Problem, "description": "The id is not a UUID"},
}

router = APIRouter(prefix="/executions", tags=["executions"], responses=_ERRORS)


@router.get("/{id}", summary="One execution: status, times, steps and error")
def get_execution(id: uuid.UUID, state: State, user: User) -> ExecutionView:
    return state.execution_for(user, id)
