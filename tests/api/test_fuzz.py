"""Schema-driven fuzzing: every operation of /openapi.json with generated requests, no 5xx.

Each generated request is sent twice: as generated (mostly unknown ids: 404/422), and with its
``{id}`` replaced by a real workflow, trigger or execution of the caller, so the handlers behind
the lookups see random bodies and parameters too.  (schemathesis' ``from_fixture`` does not run
under pytest 9, so the operations are parametrised here and each drives its own Hypothesis test.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import STEPS, Tokens
from woow_scheduler.api import create_api
from woow_scheduler.db import Database, Execution
from woow_scheduler.keys import Keys
from woow_scheduler.settings import Settings, load_settings


def _operation_labels() -> list[str]:
    # the document only: this app is never started, so it connects to nothing
    app = create_api(load_settings(database_url="sqlite:///:memory:", redis_url="redis://127.0.0.1:1/0"))
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]


LABELS = _operation_labels()


@pytest.fixture
def seeded(api_client: TestClient, tokens: Tokens, db: Database, settings: Settings,
           redis_client: redis.Redis) -> dict[str, str]:
    keys = Keys(settings.key_prefix)  # an active beat, so /readyz answers 200 rather than its 503
    redis_client.hset(keys.beat_state, mapping={"instance": "b1", "last_tick": datetime.now(UTC).isoformat()})
    redis_client.set(keys.redbeat_lock, "x", px=600_000)
    h = Tokens.header(tokens.alice)
    wf = api_client.post("/workflows", json={"name": "fuzzed", "steps": STEPS}, headers=h).json()
    tr = api_client.post(f"/workflows/{wf['id']}/schedule", json={"every": "1h"}, headers=h).json()
    with db.session() as s:
        ex = Execution(workflow_id=uuid.UUID(wf["id"]), user_id="alice")
        s.add(ex)
        s.flush()
        ex_id = str(ex.id)
    return {"workflows": wf["id"], "triggers": tr["id"], "executions": ex_id}


def test_every_operation_is_fuzzed() -> None:
    assert len(LABELS) >= 17, LABELS


@pytest.mark.parametrize("label", LABELS)
def test_no_server_error_for_any_generated_request(
    label: str, api_client: TestClient, tokens: Tokens, seeded: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_client.app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    headers = Tokens.header(tokens.alice)

    @given(case=operation.as_strategy())
    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        first = case.call(headers=headers)
        assert first.status_code < 500, f"{case.method} {case.formatted_path}: {first.status_code} {first.text}"
        if case.path_parameters and "id" in case.path_parameters:
            case.path_parameters["id"] = seeded[case.path.strip("/").split("/")[0]]
            again = case.call(headers=headers)
            assert again.status_code < 500, f"{case.method} {case.formatted_path}: {again.status_code} {again.text}"

    check()
