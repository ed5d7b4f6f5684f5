"""Hostile bodies against every API operation: never a 5xx, never a write behind a 4xx.

Every operation of /openapi.json gets each hand-made hostile body (huge, deep, NUL, extreme and
non-finite numbers, wrong types, not JSON) with its ``{id}`` pointing at a real object of the
caller; then Hypothesis generates JSON documents (NUL strings, huge numbers, deep nesting) for the
two operations that store what they are given.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import LOG, counts
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution

HOSTILE: list[bytes] = [
    json.dumps({"name": "big", "description": "x" * (2 * 1024 * 1024)}).encode(),
    b"[" * 900 + b"]" * 900,
    b'{"name": "a\\u0000b", "steps": []}',
    b'{"name": "a\x00b"}',
    b'{"name": "w", "max_retries": 1e309}',
    b'{"name": "w", "retry_delay": NaN, "timeout": Infinity}',
    b'{"name": "w", "max_retries": 100000000000000000000000000000000000000}',
    b'{"every": 1e20}',
    b'{"every": "1h", "misfire_threshold": 1e309}',
    b'{"every": "1s", "start": "9999-12-31T23:59:59Z"}',
    b'{"cron": "* * * * * ? 9999"}',
    b'{"at": "0001-01-01T00:00:00Z"}',
    b'{"name": ["not", "a", "string"], "steps": "nope"}',
    b'{"name": "w", "steps": [{"name": "s", "type": "log", "config": {"message": "a\\nforged line"}}]}',
    b"not json at all",
    b"",
    b"null",
]


@pytest.fixture
def seeded(client: TestClient, alice: dict[str, str], db: Database) -> dict[str, str]:
    wf = client.post("/workflows", json={"name": "seeded", "steps": LOG}, headers=alice).json()
    tr = client.post(f"/workflows/{wf['id']}/schedule", json={"every": "1h"}, headers=alice).json()
    with db.session() as s:
        ex = Execution(workflow_id=uuid.UUID(wf["id"]), user_id="alice")
        s.add(ex)
        s.flush()
        ex_id = str(ex.id)
    return {"workflows": wf["id"], "triggers": tr["id"], "executions": ex_id}


def operations(client: TestClient) -> list[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def test_hostile_bodies_on_every_operation(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], seeded: dict[str, str], db: Database
) -> None:
    ops = operations(client)
    assert len(ops) >= 17
    failures: list[str] = []
    for method, path in ops:
        real = path.replace("{id}", seeded.get(path.strip("/").split("/")[0], "x"))
        for body in HOSTILE:
            for who in (alice, bob):
                before = counts(db)
                resp = client.request(method, real, content=body,
                                      headers={**who, "content-type": "application/json"})
                if resp.status_code >= 500 and (path, resp.status_code) != ("/readyz", 503):  # no beat here
                    failures.append(f"{method} {real} {body[:60]!r}: {resp.status_code} {resp.text[:200]}")
                elif resp.status_code >= 400 and counts(db) != before:
                    failures.append(f"{method} {real} {body[:60]!r}: {resp.status_code} but wrote rows")
                elif resp.status_code >= 400 and path != "/readyz":
                    assert resp.headers["content-type"] == "application/problem+json", (method, path, resp.text)
    assert failures == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(alphabet=st.characters(), max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
workflow_like = st.fixed_dictionaries(
    {"name": st.text(max_size=20) | st.just("ok-name"), "steps": st.lists(
        st.fixed_dictionaries({"name": st.text(max_size=8), "type": st.sampled_from(
            ["log", "sleep", "http", "shell", "python", "celery_task", "nope"]), "config": st.dictionaries(
            st.sampled_from(["message", "url", "argv", "task", "seconds", "queue", "headers", "inherit_env"]),
            json_values, max_size=3)}), max_size=3)},
    optional={"max_retries": json_values, "timeout": json_values, "owner_user_id": json_values},
)
schedule_like = st.dictionaries(
    st.sampled_from(["every", "cron", "at", "tz", "start", "end", "repeat", "misfire", "misfire_threshold",
                     "max_catchup", "name", "type", "expression"]),
    json_values | st.sampled_from(["1s", "1h", "0 0 9 * * ?", "9999-12-31T23:59:59Z", "Europe/Berlin"]),
    max_size=4,
)


def test_generated_documents_never_give_a_5xx_or_a_write_behind_a_refusal(
    client: TestClient, bob: dict[str, str], seeded: dict[str, str], db: Database
) -> None:
    mine = client.post("/workflows", json={"name": "bobs", "steps": LOG}, headers=bob).json()

    @given(doc=workflow_like, sched=schedule_like)
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(doc: dict[str, Any], sched: dict[str, Any]) -> None:
        for method, path, body in (("POST", "/workflows", doc), ("PUT", f"/workflows/{mine['id']}", doc),
                                   ("POST", f"/workflows/{mine['id']}/schedule", sched)):
            before = counts(db)
            resp = client.request(method, path, content=json.dumps(body), headers={
                **bob, "content-type": "application/json"})
            assert resp.status_code < 500, (method, body, resp.text)
            if resp.status_code >= 400:
                assert counts(db) == before, (method, body, resp.text)

    check()


def test_anonymous_callers_reach_nothing_but_health(
    client: TestClient, seeded: dict[str, str], db: Database
) -> None:
    before = counts(db)
    public = {"/healthz", "/readyz"}
    for method, path in operations(client):
        real = path.replace("{id}", seeded.get(path.strip("/").split("/")[0], "x"))
        for headers in ({}, {"Authorization": "Bearer woow_forged"}, {"Authorization": "Basic YWxpY2U6cHc="}):
            resp = client.request(method, real, json={"name": "x", "steps": LOG, "every": "1h"}, headers=headers)
            if path in public:
                assert resp.status_code in (200, 503), (method, path, resp.text)
                assert "alice" not in resp.text and "seeded" not in resp.text
            else:
                # 429 once the forged tokens pass the failed-lookup limit of this address
                assert resp.status_code in (401, 429), (method, path, resp.status_code, resp.text)
    assert counts(db) == before
