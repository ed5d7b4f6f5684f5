"""Console sessions: a bearer token exchanged once for a server-side session in Redis.

The browser holds only a random session id in an HttpOnly, SameSite=Strict cookie; Redis holds,
under the SHA-256 of that id (``Keys.console_session``), the principal the token stood for and the
session's CSRF token.  The token itself is never stored.  Every request re-checks that the token
behind the session is still live (not revoked), so revoking a token ends its console sessions too.

``may_change`` is the ONE place that decides whether a principal may change things from the
console (buttons shown, POSTs accepted).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from ...db.models import ApiToken
from ...db.session import Database
from ...keys import Keys
from ...tokens import Principal

COOKIE = "woow_console"
#: the double-submit cookie that protects the login form itself (there is no session yet)
LOGIN_COOKIE = "woow_console_login"


def may_change(principal: Principal) -> bool:
    """May ``principal`` pause, resume, run or delete from the console?  Exactly when the API lets
    it write: the token has the ``write`` (or ``admin``) scope."""
    return principal.can_write


@dataclass(frozen=True)
class ConsoleSession:
    principal: Principal
    csrf: str
    created_at: datetime

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), str(sent).encode())


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(self, client: redis.Redis, keys: Keys, db: Database, ttl: int) -> None:
        """``ttl``: seconds a session lives from login (``settings.console_session_ttl``)."""
        self.client = client
        self.keys = keys
        self.db = db
        self.ttl = ttl

    def create(self, principal: Principal) -> tuple[str, ConsoleSession]:
        """A new session for ``principal``; returns the cookie value (shown to nobody else)."""
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(principal=principal, csrf=secrets.token_urlsafe(32), created_at=datetime.now(UTC))
        body = {
            "principal": principal.model_dump(mode="json"),
            "csrf": session.csrf,
            "created_at": session.created_at.isoformat(),
        }
        self.client.set(self.keys.console_session(_digest(session_id)), json.dumps(body), ex=self.ttl)
        return session_id, session

    def load(self, session_id: str | None) -> ConsoleSession | None:
        """The live session of this cookie value, or ``None`` (unknown, expired, or its token revoked)."""
        if not session_id or len(session_id) > 100:
            return None
        key = self.keys.console_session(_digest(session_id))
        raw = self.client.get(key)
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            principal = Principal.model_validate(data["principal"])
            session = ConsoleSession(
                principal=principal, csrf=str(data["csrf"]), created_at=datetime.fromisoformat(data["created_at"])
            )
        except (ValueError, KeyError, TypeError):
            self.client.delete(key)
            return None
        if not self._token_live(principal.token_id):
            self.client.delete(key)
            return None
        return session

    def delete(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 100:
            self.client.delete(self.keys.console_session(_digest(session_id)))

    def _token_live(self, token_id: uuid.UUID) -> bool:
        now = datetime.now(UTC)
        with self.db.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None or row.revoked_at is not None:
                return False
            return row.expires_at is None or row.expires_at > now
