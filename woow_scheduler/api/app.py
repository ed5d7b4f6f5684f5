"""``create_api(settings)``: the FastAPI app with its routers, auth and problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from ..db.session import Database
from ..redis_store import make_redis
from ..service import Service
from ..settings import Settings
from . import executions, health, problems, triggers, workflows
from .limits import LimitsMiddleware
from .state import ApiState

DESCRIPTION = """\
Schedule workflows, list their triggers with live next/previous fire times, pause and resume
them, run workflows now and read their history.

Every endpoint except `/healthz` and `/readyz` needs `Authorization: Bearer <token>` (tokens come
from `woow token create --user U`).  A token sees and changes only its user's workflows (all of
them with `--admin`); a token without the `write` scope only reads; `/metrics` needs the `metrics`
or `admin` scope; steps of the `shell`, `python` and `celery_task` strategies, and `http` steps to
non-public addresses, need the privilege of that name (see docs/security.md).  Errors are RFC 9457
`application/problem+json` documents whose `field` names the offending input.
"""


def _version() -> str:
    try:
        return version("woow-scheduler")
    except PackageNotFoundError:  # pragma: no cover - running from a work tree without install
        return "0"


def create_api(settings: Settings) -> FastAPI:
    """Build the API for ``settings``; its database and Redis clients close with the app."""
    db = Database(settings.database_url)
    client = make_redis(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    from ..scheduler.sync import RedBeatMirror

    service = Service(db, settings, mirror=RedBeatMirror(settings, db, client), redis_client=client)
    state = ApiState(settings=settings, db=db, redis=client, service=service, owns_stores=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="woow-scheduler",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.woow = state
    app.add_middleware(
        LimitsMiddleware, max_body=settings.api_max_body_bytes, max_depth=settings.api_max_json_depth
    )
    problems.install(app)
    app.include_router(workflows.router)
    app.include_router(triggers.router)
    app.include_router(executions.router)
    app.include_router(health.router)
    from .console import create_console

    app.mount("/ui", create_console(state))  # the operator console (HTML pages, api/console/)
    return app
