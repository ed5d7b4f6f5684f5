"""Bearer tokens of the HTTP API: created, listed, revoked and verified.

A token is ``woow_`` followed by 43 URL-safe characters (256 random bits).  Only its SHA-256 (hex)
is stored in ``api_tokens``; the token itself is shown once, when it is created.  A revoked token
keeps its row (for the audit trail) and is refused from the moment ``revoked_at`` is set; a token
with ``expires_at`` is refused from that instant on.  Scopes (``permissions.SCOPES``) say what a
token may do: ``read`` only, ``read write`` (the default), ``admin``, and the strategy privileges.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update

from .db.models import ApiToken
from .db.session import Database
from .errors import InvalidInput, NotFound
from .permissions import ADMIN, WRITE, normalise_scopes, privileges_of
from .views import IsoTime

TOKEN_PREFIX = "woow_"
#: ``last_used_at`` is written at most this often per token (not one UPDATE per request).
LAST_USED_RESOLUTION = timedelta(seconds=60)


class TokenView(BaseModel):
    """A token's row, never its secret."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    user_id: str
    name: str
    is_admin: bool
    scopes: list[str]
    created_at: IsoTime
    last_used_at: IsoTime | None
    revoked_at: IsoTime | None
    expires_at: IsoTime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        return cls(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            is_admin=row.is_admin,
            scopes=sorted(set((row.scopes or "").split()) | ({ADMIN} if row.is_admin else set())),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            expires_at=row.expires_at,
        )


class Principal(BaseModel):
    """Who a request acts for."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    is_admin: bool
    token_id: uuid.UUID
    scopes: frozenset[str] = frozenset({"read", "write"})

    @property
    def can_write(self) -> bool:
        return self.is_admin or WRITE in self.scopes

    @property
    def privileges(self) -> frozenset[str]:
        """Strategy privileges of this token (every one for an admin)."""
        return privileges_of(self.scopes | ({ADMIN} if self.is_admin else set()))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_user(user_id: str) -> str:
    user_id = user_id.strip()
    if not 1 <= len(user_id) <= 200 or any(c.isspace() for c in user_id):
        raise InvalidInput("user: 1-200 characters without spaces", field="user")
    return user_id


def create_token(
    db: Database,
    *,
    user_id: str,
    name: str = "",
    is_admin: bool = False,
    scopes: Iterable[str] = (),
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> tuple[TokenView, str]:
    """Store a new token's hash; return its row and the token (the only time it is known).

    ``scopes`` default to ``read write``; ``admin`` (or ``is_admin``) gives every scope.
    ``expires_in`` makes the token stop working that long after now.
    """
    user_id = _check_user(user_id)
    if len(name) > 200:
        raise InvalidInput("name: at most 200 characters", field="name")
    chosen = normalise_scopes(scopes, admin=is_admin)
    is_admin = ADMIN in chosen
    expires_at = None
    if expires_in is not None:
        if expires_in <= timedelta(0):
            raise InvalidInput("expires: must be a positive duration", field="expires")
        expires_at = (now or datetime.now(UTC)) + expires_in
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.session() as s:
        row = ApiToken(
            user_id=user_id,
            name=name,
            token_hash=hash_token(token),
            is_admin=is_admin,
            scopes=" ".join(chosen),
            expires_at=expires_at,
        )
        s.add(row)
        s.flush()
        return TokenView.of(row), token


def list_tokens(db: Database, *, include_revoked: bool = True) -> list[TokenView]:
    with db.session() as s:
        q = select(ApiToken).order_by(ApiToken.user_id, ApiToken.created_at)
        if not include_revoked:
            q = q.where(ApiToken.revoked_at.is_(None))
        return [TokenView.of(row) for row in s.scalars(q)]


def revoke_token(db: Database, token_id: str, *, now: datetime | None = None) -> TokenView:
    """Revoke by id (idempotent: revoking a revoked token keeps its first ``revoked_at``)."""
    try:
        key = uuid.UUID(token_id.strip())
    except ValueError:
        raise InvalidInput(
            f"token: '{token_id}' is not a token id (a UUID, see woow token list)", field="token"
        ) from None
    with db.session() as s:
        row = s.get(ApiToken, key)
        if row is None:
            raise NotFound(f"token: '{token_id}' not found")
        if row.revoked_at is None:
            row.revoked_at = now or datetime.now(UTC)
            s.flush()
        return TokenView.of(row)


def verify_token(db: Database, token: str, *, now: datetime | None = None) -> Principal | None:
    """The principal of a valid, unrevoked token, or ``None``.  Refreshes ``last_used_at`` lazily."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = now or datetime.now(UTC)
    with db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            s.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        scopes = frozenset((row.scopes or "").split()) | ({ADMIN} if row.is_admin else frozenset())
        return Principal(user_id=row.user_id, is_admin=row.is_admin, token_id=row.id, scopes=scopes)
