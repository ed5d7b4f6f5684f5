"""Fixtures of the security tests: the API on this test's own PostgreSQL and Redis, the shipped
defaults (60 s minimum interval, no allow-lists), and tokens of two ordinary users (alice, bob) and
an admin.  ``token(user, *scopes)`` makes more, e.g. bob with the ``shell`` privilege."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from woow_scheduler.api import create_api
from woow_scheduler.db import Database
from woow_scheduler.db.models import ApiToken, Execution, Trigger, Workflow
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import create_token

LOG = [{"name": "hello", "type": "log", "config": {"message": "hi"}}]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def sec_settings(settings: Settings) -> Settings:
    """Shipped defaults, shell enabled by the operator (the privilege still decides who uses it)."""
    return settings.model_copy(
        update={
            "enable_shell": True,
            "queue": f"woow-{uuid.uuid4().hex[:6]}",
            "python_callables": ["tests.worker.callables:add"],
        }
    )


@pytest.fixture
def client(sec_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(sec_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def token(db: Database) -> Callable[..., str]:
    def make(user: str, *scopes: str, admin: bool = False) -> str:
        return create_token(db, user_id=user, scopes=scopes, is_admin=admin)[1]

    return make


@pytest.fixture
def alice(token: Callable[..., str]) -> dict[str, str]:
    return auth(token("alice"))


@pytest.fixture
def bob(token: Callable[..., str]) -> dict[str, str]:
    return auth(token("bob"))


@pytest.fixture
def admin(token: Callable[..., str]) -> dict[str, str]:
    return auth(token("root", admin=True))


def counts(db: Database) -> dict[str, int]:
    """Rows per table: what a refused request must leave unchanged."""
    with db.session() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Workflow, Trigger, Execution, ApiToken)
        }


def one_line_problem(resp: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The refusal is problem+json with that status, a one-line detail and (if given) that field."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json", resp.headers
    body: dict[str, Any] = resp.json()
    assert "\n" not in body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body
