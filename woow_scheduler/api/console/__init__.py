"""The operator console: server-rendered pages under ``/ui`` of ``woow api``.

Same process, same service layer and the same ownership rules as the API (a user sees their own
workflows, an admin sees all).  Log in with an API token; the console keeps a server-side session
in Redis (``session.py``).  Pages work without JavaScript; ``static/console.js`` only refreshes a
running execution in place.  Mounted by ``create_api``::

    app.mount("/ui", create_console(state))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ...errors import WoowError
from ..state import ApiState
from .pages import router
from .session import SessionStore
from .web import HERE, LoginRequired, Refused, base, render, status_of

__all__ = ["create_console"]

log = logging.getLogger("woow.console")

#: pages and their assets come from this origin only; no inline script or style, no framing
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def create_console(state: ApiState) -> FastAPI:
    """The console as an app of its own (no OpenAPI; HTML errors), sharing ``state`` with the API."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.woow = state
    app.state.sessions = SessionStore(state.redis, state.keys, state.db, state.settings.console_session_ttl)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(f"{base(request)}/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            path = request.url.path
            target = f"{base(request)}/login"
            if path.startswith(base(request) + "/") and path != f"{base(request)}/":
                target += "?" + _q(path)
            return RedirectResponse(target, status_code=303)
        return render(request, "error.html", 403, title="Log in first", status=403,
                      detail="session: not logged in or the session expired; log in again")

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html", exc.status, title="Refused", status=exc.status, detail=exc.detail)

    @app.exception_handler(WoowError)
    async def woow_error(request: Request, exc: WoowError) -> Response:
        status = status_of(exc)
        return render(request, "error.html", status, title="Error", status=status, detail=str(exc))

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError) -> Response:
        log.warning("console: Redis unavailable: %s", exc)
        return render(request, "error.html", 503, title="Unavailable", status=503,
                      detail="redis: unavailable (console sessions live in Redis); try again shortly")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        field = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
        return render(request, "error.html", 422, title="Invalid input", status=422, detail=f"{field}: {err['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = "page: not found" if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", exc.status_code, title="Error", status=exc.status_code, detail=detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("console: %s %s failed", request.method, request.url.path)
        return render(request, "error.html", 500, title="Error", status=500,
                      detail="server: an unexpected error; the log of woow api has the details")

    return app


def _q(path: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": path})
