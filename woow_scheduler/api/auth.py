"""Bearer-token authentication: ``Authorization: Bearer woow_...`` on every API request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..tokens import Principal, verify_token
from .state import ApiState

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="woow_...",
    description="An API token from `woow token create --user U`; send it as `Authorization: Bearer <token>`.",
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="woow"'}


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.woow
    return state


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "authorization: send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    state = get_state(request)
    principal = await run_in_threadpool(verify_token, state.db, credentials.credentials)
    if principal is None:
        raise HTTPException(401, "authorization: the token is unknown or revoked", headers=_CHALLENGE)
    request.state.principal = principal
    return principal


State = Annotated[ApiState, Depends(get_state)]
User = Annotated[Principal, Depends(current_principal)]
