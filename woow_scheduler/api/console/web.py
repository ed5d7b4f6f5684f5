"""The plumbing of the console's pages: rendering, the session dependency, forms and refusals."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from ...errors import Conflict, InvalidInput, NotFound, StoreUnavailable, WoowError
from ..state import ApiState
from .session import COOKIE, ConsoleSession, SessionStore, may_change

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

#: the largest form the console accepts (its forms carry a CSRF token and a few short fields)
MAX_FORM_BYTES = 16 * 1024

#: the messages a redirect after a POST may show (by code, so no text is reflected from the URL)
MESSAGES = {
    "paused": "Trigger paused.",
    "resumed": "Trigger resumed.",
    "trigger-deleted": "Trigger deleted.",
    "workflow-deleted": "Workflow deleted.",
    "logged-out": "You are logged out.",
}


class LoginRequired(Exception):
    """No live session: GETs go to the login page, POSTs are refused."""


class Refused(Exception):
    """A request the console refuses with ``status`` and a one-line ``detail`` naming the field."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def status_of(exc: WoowError) -> int:
    for family, status in ((NotFound, 404), (Conflict, 409), (InvalidInput, 422), (StoreUnavailable, 503)):
        if isinstance(exc, family):
            return status
    return 400


def base(request: Request) -> str:
    """Where the console is mounted (``/ui``), without a trailing slash."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.woow
    return state


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


def current_session(request: Request) -> ConsoleSession:
    session = sessions_of(request).load(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired()
    request.state.session = session
    return session


Session = Annotated[ConsoleSession, Depends(current_session)]
State = Annotated[ApiState, Depends(state_of)]


async def read_form(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST (the first value of each field), size-limited."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if ctype == "" and length in (None, "0"):
        ctype = "application/x-www-form-urlencoded"  # an empty POST is an empty form
    if ctype != "application/x-www-form-urlencoded":
        raise Refused(415, "content-type: the console accepts only application/x-www-form-urlencoded forms")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise Refused(413, f"form: larger than {MAX_FORM_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, f"form: larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "form: not a valid URL-encoded UTF-8 form") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


Form = Annotated[dict[str, str], Depends(read_form)]


def checked_post(session: ConsoleSession, form: Mapping[str, str], *, change: bool = True) -> ConsoleSession:
    """Refuse a POST without this session's CSRF token, or a change by a read-only principal."""
    if not session.csrf_ok(form.get("csrf")):
        raise Refused(403, "csrf: the form's CSRF token is missing or wrong; reload the page and try again")
    if change and not may_change(session.principal):
        raise Refused(403, "token: this token is read-only (no write scope); it cannot change anything")
    return session


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise NotFound(f"{field}: '{value[:80]}' not found") from None


def render(request: Request, template: str, code: int = 200, /, **context: Any) -> Response:
    session: ConsoleSession | None = getattr(request.state, "session", None)
    context.setdefault("title", "")
    msg = request.query_params.get("msg")
    return templates.TemplateResponse(
        request,
        template,
        {
            "base": base(request),
            "session": session,
            "principal": session.principal if session else None,
            "can_change": bool(session and may_change(session.principal)),
            "csrf": session.csrf if session else "",
            "message": MESSAGES.get(msg or ""),
            **context,
        },
        status_code=code,
    )


def redirect(request: Request, path: str, **query: str) -> RedirectResponse:
    target = base(request) + path
    if query:
        target += "?" + urlencode(query)
    return RedirectResponse(target, status_code=303)


def safe_next(request: Request, value: str | None) -> str:
    """A post-login target inside the console, else the overview (no open redirects)."""
    root = base(request)
    if value and value.startswith(root + "/") and "//" not in value and "\\" not in value and ":" not in value:
        return value
    return root + "/"


def _fmt_time(value: Any) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _fmt_relative(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    seconds = (value - datetime.now(UTC)).total_seconds()
    word = "in {}" if seconds >= 0 else "{} ago"
    s = abs(seconds)
    amount = f"{s:.0f}s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"
    return word.format(amount)


def _fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


templates.env.filters["t"] = _fmt_time
templates.env.filters["ago"] = _fmt_relative
templates.env.filters["secs"] = _fmt_seconds
templates.env.filters["pretty"] = _to_json
