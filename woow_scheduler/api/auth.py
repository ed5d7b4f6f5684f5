"""Bearer-token authentication: ``Authorization: Bearer woow_...`` on every API request.

A token without the ``write`` scope may only read (GET).  Failed token lookups are counted per
client address in Redis: past ``WOOW_AUTH_FAILURE_LIMIT`` a minute the address gets 429 before
any lookup, so tokens cannot be guessed at speed.
"""

from __future__ import annotations

import logging
from typing import Annotated

import redis
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
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FAILURE_WINDOW = 60  # seconds

log = logging.getLogger("woow.api")


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def failed_lookups(state: ApiState, client: str) -> int:
    """Failed token lookups from ``client`` in the current window (0 without Redis)."""
    try:
        value = state.redis.get(state.keys.auth_failures(client))
    except redis.RedisError as exc:  # no rate limit without Redis, but no 5xx either
        log.warning("api: cannot read the failed-login counter: %s", exc)
        return 0
    return int(value or 0)


def count_failed_lookup(state: ApiState, client: str) -> None:
    """Count one failed token lookup from ``client`` (every login form should, like the API)."""
    key = state.keys.auth_failures(client)
    try:
        with state.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, FAILURE_WINDOW, nx=True)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("api: cannot count a failed login: %s", exc)


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
    client = _client(request)
    if await run_in_threadpool(failed_lookups, state, client) >= state.settings.auth_failure_limit:
        raise HTTPException(
            429,
            f"authorization: too many failed token lookups from this address; retry in {FAILURE_WINDOW}s",
            headers={"Retry-After": str(FAILURE_WINDOW)},
        )
    principal = await run_in_threadpool(verify_token, state.db, credentials.credentials)
    if principal is None:
        await run_in_threadpool(count_failed_lookup, state, client)
        raise HTTPException(401, "authorization: the token is unknown, expired or revoked", headers=_CHALLENGE)
    if request.method not in _SAFE_METHODS and not principal.can_write:
        raise HTTPException(403, "authorization: this token is read-only (it lacks the 'write' scope)")
    request.state.principal = principal
    return principal


State = Annotated[ApiState, Depends(get_state)]
User = Annotated[Principal, Depends(current_principal)]
