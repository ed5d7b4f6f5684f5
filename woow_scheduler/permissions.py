"""Who may do what: token scopes, strategy privileges and the checks that use them.

Scopes are carried by API tokens (``woow token create --scope ...``):

- ``read``: GET the caller's own workflows, triggers and history;
- ``write``: create, change, delete and run them (a token without it is read-only);
- ``admin``: every user's objects, every privilege, ``/metrics``;
- ``metrics``: ``/metrics`` only;
- the privileges ``shell``, ``python``, ``celery_task`` and ``http_private``: steps of those
  strategies (``http_private``: http steps to non-public addresses, with redirects or without TLS
  verification).  Only an operator (the CLI) gives them.

A user holds a privilege while one of their live (unrevoked, unexpired) tokens carries it or
``admin``.  A workflow is checked against its *owner's* privileges when it is saved through the API
and again before each privileged step runs, so revoking the token that carried a grant stops the
owner's stored workflows at their next run (the step fails with the reason recorded).  Workflows
without an owner were written by an operator with the CLI and hold every privilege.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import Forbidden, InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    from .db.session import Database
    from .settings import Settings

READ = "read"
WRITE = "write"
ADMIN = "admin"
METRICS = "metrics"

SHELL = "shell"
PYTHON = "python"
CELERY_TASK = "celery_task"
HTTP_PRIVATE = "http_private"

#: privileges a step may need; ``admin`` implies all of them
PRIVILEGES: frozenset[str] = frozenset({SHELL, PYTHON, CELERY_TASK, HTTP_PRIVATE})
ALL_PRIVILEGES = PRIVILEGES
SCOPES: frozenset[str] = frozenset({READ, WRITE, ADMIN, METRICS}) | PRIVILEGES
DEFAULT_SCOPES: tuple[str, ...] = (READ, WRITE)


def normalise_scopes(values: Iterable[str], *, admin: bool = False) -> tuple[str, ...]:
    """Validated, sorted, de-duplicated scopes (``admin`` adds itself; an empty list means read+write)."""
    found: set[str] = set()
    for raw in values:
        for part in str(raw).replace(",", " ").split():
            if part not in SCOPES:
                raise InvalidInput(f"scope: unknown scope '{part}' (known: {', '.join(sorted(SCOPES))})", field="scope")
            found.add(part)
    if not found:
        found.update(DEFAULT_SCOPES)
    if admin:
        found.add(ADMIN)
    if ADMIN in found:
        found.update(DEFAULT_SCOPES)
    return tuple(sorted(found))


def privileges_of(scopes: Iterable[str]) -> frozenset[str]:
    """The strategy privileges a set of scopes gives."""
    given = set(scopes)
    if ADMIN in given:
        return ALL_PRIVILEGES
    return frozenset(given & PRIVILEGES)


def missing_privileges(steps: Sequence[Mapping[str, Any]], privileges: frozenset[str], settings: Settings) -> None:
    """Raise :class:`Forbidden` naming the first step that needs a privilege not in ``privileges``.

    ``steps`` are already validated (``validate_steps``): their configs parse.
    """
    from .engine.registry import available_strategies

    strategies = available_strategies()
    for i, step in enumerate(steps):
        cls = strategies.get(str(step.get("type")))
        if cls is None:
            continue
        config = cls.Config.model_validate(step.get("config") or {}, context={"settings": settings})
        needed = cls(settings).required_privileges(config)
        lacking = sorted(needed - privileges)
        if lacking:
            raise Forbidden(
                f"steps[{i}].type: strategy '{cls.name}' needs the '{lacking[0]}' privilege "
                f"({cls(settings).privilege_reason(config, lacking[0])}); an operator grants it with "
                f"'woow token create --scope {lacking[0]}'",
                field=f"steps[{i}].type",
            )


# -- run time: the owner's privileges, read from the database --------------------------------------

_dbs: dict[str, Database] = {}
_dbs_guard = threading.Lock()


def _database(url: str) -> Database:
    """One small engine per database URL in this process (built on first use, never on import)."""
    from .db.session import Database

    with _dbs_guard:
        db = _dbs.get(url)
        if db is None:
            kwargs: dict[str, Any] = {} if url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 2}
            db = Database(url, **kwargs)
            _dbs[url] = db
        return db


def user_privileges(db: Database, user_id: str, *, now: datetime | None = None) -> frozenset[str]:
    """Privileges of ``user_id``: the union over their live tokens' scopes."""
    from sqlalchemy import select

    from .db.models import ApiToken

    now = now or datetime.now(UTC)
    with db.session() as s:
        rows = s.execute(
            select(ApiToken.scopes, ApiToken.is_admin, ApiToken.expires_at).where(
                ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)
            )
        ).all()
    scopes: set[str] = set()
    for raw, is_admin, expires_at in rows:
        if expires_at is not None and expires_at <= now:
            continue
        scopes.update(str(raw or "").split())
        if is_admin:
            scopes.add(ADMIN)
    return privileges_of(scopes)


def owner_privileges(settings: Settings, workflow_id: uuid.UUID, *, db: Database | None = None) -> frozenset[str]:
    """Privileges of the owner of a stored workflow (every privilege when an operator owns it).

    A workflow that is not in the database (deleted meanwhile) gets none.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from .db.models import Workflow

    database = db or _database(settings.database_url)
    try:
        with database.session() as s:
            row = s.execute(select(Workflow.owner_user_id).where(Workflow.id == workflow_id)).first()
        if row is None:
            return frozenset()
        owner = row[0]
        if owner is None:
            return ALL_PRIVILEGES
        return user_privileges(database, owner)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"database: cannot read the privileges of the workflow's owner ({type(exc).__name__})"
        ) from None
