"""Fixtures of the API tests: the app on this test's own PostgreSQL database and Redis prefix,
and tokens of three users (alice, bob, an admin)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from woow_scheduler.api import create_api
from woow_scheduler.db import Database
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import create_token

STEPS = [{"name": "hello", "type": "log", "config": {"message": "hi"}}]


@dataclass
class Tokens:
    alice: str
    bob: str
    admin: str

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with a 1 s minimum interval: these tests fire every second
    (tests/security checks the default 60 s)."""
    return settings.model_copy(update={"min_interval": 1.0})


@pytest.fixture
def tokens(db: Database) -> Tokens:
    return Tokens(
        alice=create_token(db, user_id="alice", name="alice laptop")[1],
        bob=create_token(db, user_id="bob")[1],
        admin=create_token(db, user_id="root", is_admin=True)[1],
    )


@pytest.fixture
def api_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings), raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def alice(api_client: TestClient, tokens: Tokens) -> TestClient:
    """The client with alice's token."""
    api_client.headers.update(Tokens.header(tokens.alice))
    return api_client


def make_workflow(client: TestClient, name: str = "nightly", **fields: object) -> dict[str, object]:
    resp = client.post("/workflows", json={"name": name, "steps": STEPS, **fields})
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    return body
