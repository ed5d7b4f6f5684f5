"""Request limits applied before any route runs (an ASGI middleware).

- a body larger than ``WOOW_API_MAX_BODY_BYTES`` gets 413 (by its Content-Length at once, or as soon
  as a chunked body passes the limit);
- a JSON body nested deeper than ``WOOW_API_MAX_JSON_DEPTH`` gets 422 (parsers and validators
  recurse: depth is bounded before they see it);
- NUL characters (raw or ``\\u0000``) in the body, path or query get 422: PostgreSQL cannot store
  them in text, and no field needs them.

Every refusal is a one-line problem+json naming ``body``, ``path`` or ``query``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_response

_ESCAPED_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000", re.IGNORECASE)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def json_too_deep(body: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays/objects deeper than ``limit`` (strings are skipped)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def has_nul(body: bytes) -> bool:
    return b"\x00" in body or _ESCAPED_NUL.search(body) is not None


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int, max_depth: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            where = "path" if "\x00" in scope.get("path", "") else "query"
            await self._refuse(scope, receive, send, 422, "invalid-input", f"{where}: NUL characters are not allowed",
                               where)
            return
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, receive, send, 413, "too-large", self._size_message(), "body")
                return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and declared in (None, "0"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, receive, send, 413, "too-large", self._size_message(), "body")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        if has_nul(body):
            await self._refuse(scope, receive, send, 422, "invalid-input", "body: NUL characters are not allowed",
                               "body")
            return
        if json_too_deep(body, self.max_depth):
            await self._refuse(
                scope, receive, send, 422, "invalid-input",
                f"body: JSON nested deeper than {self.max_depth} levels (WOOW_API_MAX_JSON_DEPTH)", "body",
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _size_message(self) -> str:
        return f"body: larger than {self.max_body} bytes (WOOW_API_MAX_BODY_BYTES)"

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, kind: str, detail: str, field: str
    ) -> None:
        titles: dict[int, str] = {413: "Request too large", 422: "Invalid input"}
        response: Any = problem_response(
            status, kind, titles.get(status, "Bad request"), detail, request=Request(scope), field=field
        )
        await response(scope, receive, send)
