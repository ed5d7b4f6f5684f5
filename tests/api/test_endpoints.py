"""Every endpoint against real PostgreSQL and Redis: CRUD, scheduling, ownership, tokens, errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.api.conftest import STEPS, Tokens, make_workflow
from woow_scheduler.db import ApiToken, Database, Execution, Trigger
from woow_scheduler.enums import ExecutionStatus, TriggerState
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.codec import encode_meta
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import hash_token, list_tokens, revoke_token

PROBLEM = "application/problem+json"


def test_workflow_crud(alice: TestClient) -> None:
    wf = make_workflow(alice, description="first")
    assert wf["owner_user_id"] == "alice"
    assert alice.get("/workflows").json() == [wf]
    assert alice.get(f"/workflows/{wf['id']}").json() == wf
    assert alice.get("/workflows/nightly").json()["id"] == wf["id"]  # by exact name too

    resp = alice.put(f"/workflows/{wf['id']}", json={"name": "nightly-2", "steps": STEPS, "max_retries": 3})
    assert resp.status_code == 200, resp.text
    replaced = resp.json()
    assert (replaced["name"], replaced["max_retries"], replaced["description"]) == ("nightly-2", 3, "")
    assert replaced["owner_user_id"] == "alice"  # omitted owner is kept

    assert alice.delete(f"/workflows/{wf['id']}").status_code == 204
    gone = alice.get(f"/workflows/{wf['id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM
    assert alice.get("/workflows").json() == []


def test_validation_errors_are_problem_json_with_the_field(alice: TestClient) -> None:
    resp = alice.post("/workflows", json={"name": "ok", "steps": STEPS, "max_retries": -1})
    assert resp.status_code == 422
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    assert body["type"] == "urn:woow:problem:invalid-input"
    assert body["status"] == 422 and body["instance"] == "/workflows"
    assert body["field"] == "max_retries"
    assert body["errors"][0] == {"field": "max_retries", "location": "body",
                                 "reason": "Input should be greater than or equal to 0 (got -1)"}

    unknown = alice.post("/workflows", json={"name": "ok", "steps": STEPS, "colour": "red"}).json()
    assert (unknown["field"], unknown["detail"]) == ("colour", "colour: unknown field")

    # a step is checked by the same registry as the CLI's (the service's validate_steps)
    bad_step = alice.post("/workflows", json={"name": "ok", "steps": [{"name": "x", "type": "nope"}]})
    assert bad_step.status_code == 422, bad_step.text
    assert "nope" in bad_step.json()["detail"]

    make_workflow(alice)
    dup = alice.post("/workflows", json={"name": "nightly", "steps": STEPS})
    assert dup.status_code == 409
    assert dup.json()["field"] == "name"


def test_schedule_accepts_cli_and_stored_forms(alice: TestClient) -> None:
    wf = make_workflow(alice)
    cron = alice.post(f"/workflows/{wf['id']}/schedule",
                      json={"name": "weekdays", "cron": "0 0 9 ? * MON-FRI", "tz": "Europe/Berlin"})
    assert cron.status_code == 201, cron.text
    body = cron.json()
    assert (body["name"], body["type"], body["timezone"], body["state"]) == ("weekdays", "cron", "Europe/Berlin",
                                                                            "NORMAL")
    assert body["created_by"] == "alice"
    times = [datetime.fromisoformat(t) for t in body["next_fire_times"]]
    assert len(times) == 10 and times == sorted(times)
    assert all(t.astimezone(UTC).hour in (7, 8) and t.weekday() < 5 for t in times)
    assert body["next_fire_time"] == body["next_fire_times"][0]

    every = alice.post(f"/workflows/{wf['id']}/schedule", json={"every": "5m"}).json()
    assert (every["type"], every["spec"]["every"], every["name"]) == ("interval", 300, "interval-1")
    stored = alice.post(f"/workflows/{wf['id']}/schedule",
                        json={"type": "cron", "expression": "0 */15 * * * ?", "misfire_policy": "skip"}).json()
    assert stored["misfire_policy"] == "skip"
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    once = alice.post(f"/workflows/{wf['id']}/schedule", json={"at": at.isoformat()}).json()
    assert once["next_fire_times"] == [at.isoformat()]


def test_schedule_errors_name_the_field(alice: TestClient) -> None:
    wf = make_workflow(alice)
    url = f"/workflows/{wf['id']}/schedule"
    cases = {
        "expression": {"cron": "0 0 99 * * ?"},
        "every": {"every": "soon"},
        "timezone": {"cron": "0 0 9 * * ?", "tz": "Mars/Olympus"},
        "run_at": {"at": "2001-01-01T00:00:00Z"},
    }
    for field, body in cases.items():
        resp = alice.post(url, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"] == PROBLEM
        assert resp.json()["field"] == field, resp.json()
    assert alice.post(url, json={"cron": "0 0 9 * * ?", "every": "5m"}).status_code == 422
    assert alice.post(url, json={"name": "a", "every": "5m"}).status_code == 201
    assert alice.post(url, json={"name": "a", "every": "5m"}).status_code == 409


def test_trigger_lifecycle(alice: TestClient) -> None:
    wf = make_workflow(alice)
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"every": "1h"}).json()
    tid = tr["id"]
    listed = alice.get(f"/workflows/{wf['id']}/triggers").json()
    assert [t["id"] for t in listed] == [tid]
    assert {"state", "next_fire_time", "previous_fire_time"} <= set(listed[0])

    paused = alice.post(f"/triggers/{tid}/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "PAUSED"
    assert alice.get(f"/triggers/{tid}").json()["state"] == "PAUSED"
    assert alice.post(f"/triggers/{tid}/resume").json()["state"] == "NORMAL"

    nxt = alice.get(f"/triggers/{tid}/next", params={"n": 3}).json()
    times = [datetime.fromisoformat(t) for t in nxt["fire_times"]]
    assert nxt["trigger_id"] == tid and len(times) == 3
    assert times[1] - times[0] == timedelta(hours=1)
    assert alice.get(f"/triggers/{tid}/next", params={"n": 0}).json()["field"] == "n"

    assert alice.delete(f"/triggers/{tid}").status_code == 204
    assert alice.get(f"/triggers/{tid}").status_code == 404
    assert alice.get(f"/workflows/{wf['id']}/triggers").json() == []
    assert alice.post("/triggers/not-a-uuid/pause").json()["field"] == "id"


def test_pause_of_a_complete_trigger_is_rejected(alice: TestClient, db: Database) -> None:
    wf = make_workflow(alice)
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"every": "1h"}).json()
    assert alice.post(f"/triggers/{tr['id']}/pause").status_code == 200
    assert alice.post(f"/triggers/{tr['id']}/pause").status_code == 200  # already paused: no change
    with db.session() as s:
        s.execute(update(Trigger).where(Trigger.id == uuid.UUID(tr["id"])).values(state=TriggerState.COMPLETE))
    resp = alice.post(f"/triggers/{tr['id']}/pause")
    assert resp.status_code == 422
    assert resp.json()["field"] == "state"
    assert "COMPLETE" in resp.json()["detail"]


def test_trigger_fire_times_are_live_from_the_schedule(
    alice: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    """Beat records a fire in the RedBeat entry first; the API shows it before PostgreSQL has it."""
    wf = make_workflow(alice)
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"every": "1m"}).json()
    key = Keys(settings.key_prefix).redbeat_entry(tr["id"])
    assert redis_client.hget(key, "definition"), "the write-through created the live entry"
    first = datetime.fromisoformat(tr["next_fire_time"])
    redis_client.hset(key, "meta", encode_meta(first, 1))  # what beat writes when it fires

    live = alice.get(f"/workflows/{wf['id']}/triggers").json()[0]
    assert datetime.fromisoformat(live["previous_fire_time"]) == first
    assert datetime.fromisoformat(live["next_fire_time"]) == first + timedelta(minutes=1)
    assert live["fire_count"] == 1
    assert alice.get(f"/triggers/{tr['id']}").json()["next_fire_time"] == live["next_fire_time"]


def test_ownership_other_users_get_404(api_client: TestClient, tokens: Tokens) -> None:
    a, b, root = (Tokens.header(t) for t in (tokens.alice, tokens.bob, tokens.admin))
    wf = api_client.post("/workflows", json={"name": "alices", "steps": STEPS}, headers=a).json()
    tr = api_client.post(f"/workflows/{wf['id']}/schedule", json={"every": "1h"}, headers=a).json()

    for method, url in [
        ("GET", f"/workflows/{wf['id']}"),
        ("GET", "/workflows/alices"),
        ("PUT", f"/workflows/{wf['id']}"),
        ("DELETE", f"/workflows/{wf['id']}"),
        ("POST", f"/workflows/{wf['id']}/schedule"),
        ("GET", f"/workflows/{wf['id']}/triggers"),
        ("POST", f"/workflows/{wf['id']}/run"),
        ("GET", f"/workflows/{wf['id']}/executions"),
        ("GET", f"/triggers/{tr['id']}"),
        ("POST", f"/triggers/{tr['id']}/pause"),
        ("POST", f"/triggers/{tr['id']}/resume"),
        ("DELETE", f"/triggers/{tr['id']}"),
        ("GET", f"/triggers/{tr['id']}/next"),
    ]:
        body = {"name": "stolen", "steps": STEPS} if method == "PUT" else (
            {"every": "1m"} if url.endswith("/schedule") else None)
        resp = api_client.request(method, url, headers=b, json=body)
        assert resp.status_code == 404, (method, url, resp.text)
        assert resp.headers["content-type"] == PROBLEM
    # the same answer as for a workflow that does not exist
    missing = api_client.get(f"/workflows/{uuid.uuid4()}", headers=b).json()
    assert missing["title"] == "Not found"

    assert api_client.get("/workflows", headers=b).json() == []
    assert api_client.get(f"/triggers/{tr['id']}", headers=a).json()["state"] == "NORMAL"  # untouched
    # admin sees and changes everything
    assert [w["name"] for w in api_client.get("/workflows", headers=root).json()] == ["alices"]
    assert api_client.post(f"/triggers/{tr['id']}/pause", headers=root).json()["state"] == "PAUSED"
    # only an admin may give a workflow to someone else
    give = api_client.post("/workflows", json={"name": "gift", "steps": STEPS, "owner_user_id": "alice"}, headers=b)
    assert give.status_code == 403 and give.headers["content-type"] == PROBLEM
    given = api_client.post("/workflows", json={"name": "gift", "steps": STEPS, "owner_user_id": "bob"}, headers=root)
    assert given.json()["owner_user_id"] == "bob"
    steal = api_client.put(f"/workflows/{wf['id']}", json={"name": "alices", "steps": STEPS, "owner_user_id": "bob"},
                           headers=a)
    assert steal.status_code == 403


def test_executions_history_with_cursor_and_ownership(
    api_client: TestClient, tokens: Tokens, db: Database
) -> None:
    a, b = Tokens.header(tokens.alice), Tokens.header(tokens.bob)
    wf = api_client.post("/workflows", json={"name": "hist", "steps": STEPS}, headers=a).json()
    base = datetime(2030, 1, 1, tzinfo=UTC)
    ids = []
    with db.session() as s:
        for i in range(7):
            ex = Execution(workflow_id=uuid.UUID(wf["id"]), user_id="alice", created_at=base + timedelta(minutes=i),
                           status=ExecutionStatus.SUCCEEDED if i % 2 else ExecutionStatus.FAILED, duration_ms=10 * i)
            s.add(ex)
            s.flush()
            ids.append(str(ex.id))
    newest_first = ids[::-1]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api_client.get(f"/workflows/{wf['id']}/executions", params=params, headers=a).json()
        seen += [e["id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (newest_first, 3)

    failed = api_client.get(f"/workflows/{wf['id']}/executions", params={"status": "failed"}, headers=a).json()
    assert [e["status"] for e in failed["items"]] == ["failed"] * 4
    bad_status = api_client.get(f"/workflows/{wf['id']}/executions", params={"status": "meh"}, headers=a).json()
    assert bad_status["field"] == "status"
    bad_cursor = api_client.get(f"/workflows/{wf['id']}/executions", params={"cursor": "zz"}, headers=a).json()
    assert bad_cursor["field"] == "cursor"

    one = api_client.get(f"/executions/{ids[0]}", headers=a)
    assert one.status_code == 200 and one.json()["workflow"] == "hist"
    assert api_client.get(f"/executions/{ids[0]}", headers=b).status_code == 404
    assert api_client.get(f"/executions/{uuid.uuid4()}", headers=a).status_code == 404

    assert api_client.get("/metrics").status_code == 401  # the figures need a token with a scope for them
    assert api_client.get("/metrics", headers=a).status_code == 403
    metrics = api_client.get("/metrics", headers=Tokens.header(tokens.admin)).text
    assert 'woow_executions{status="failed"} 4.0' in metrics
    assert "woow_execution_duration_seconds_count 7.0" in metrics


def test_authentication_and_revocation(api_client: TestClient, tokens: Tokens, db: Database) -> None:
    missing = api_client.get("/workflows")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == PROBLEM
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert api_client.get("/workflows", headers={"Authorization": "Bearer woow_nope"}).status_code == 401
    assert api_client.get("/workflows", headers={"Authorization": f"Basic {tokens.alice}"}).status_code == 401

    assert api_client.get("/workflows", headers=Tokens.header(tokens.alice)).status_code == 200
    with db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(tokens.alice)))
        assert row is not None and row.last_used_at is not None
        assert tokens.alice not in (row.token_hash, row.name)  # only the hash is stored
        token_id = str(row.id)
    revoke_token(db, token_id)
    resp = api_client.get("/workflows", headers=Tokens.header(tokens.alice))
    assert resp.status_code == 401
    assert "revoked" in resp.json()["detail"]
    assert api_client.get("/workflows", headers=Tokens.header(tokens.bob)).status_code == 200
    assert [t.revoked_at is not None for t in list_tokens(db) if t.user_id == "alice"] == [True]


def test_health_readiness_and_docs(api_client: TestClient, settings: Settings,
                                   redis_client: redis.Redis) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok", "checks": {}}
    not_ready = api_client.get("/readyz")
    assert not_ready.status_code == 503
    checks = not_ready.json()["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"] and not checks["beat"]["ok"]

    keys = Keys(settings.key_prefix)  # what an active beat writes each tick
    redis_client.hset(keys.beat_state, mapping={"instance": "b1", "last_tick": datetime.now(UTC).isoformat(),
                                                "lock_timeout": "20"})
    redis_client.set(keys.redbeat_lock, "x", px=20_000)
    ready = api_client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["beat"]["instance"] == "b1"

    schema = api_client.get("/openapi.json").json()
    assert {"/workflows", "/workflows/{id}/schedule", "/triggers/{id}/next", "/executions/{id}",
            "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert api_client.get("/docs").status_code == 200
    assert api_client.get("/no/such/path").headers["content-type"] == PROBLEM


def test_run_now_publishes_and_records_the_user(alice: TestClient, settings: Settings,
                                                redis_client: redis.Redis, tokens: Tokens) -> None:
    wf = make_workflow(alice)
    resp = alice.post(f"/workflows/{wf['id']}/run")
    assert resp.status_code == 202, resp.text
    run = resp.json()
    assert run["workflow_id"] == wf["id"] and run["status"] == "queued"
    ex = alice.get(f"/executions/{run['execution_id']}").json()
    assert (ex["status"], ex["user_id"], ex["trigger_id"]) == ("queued", "alice", None)
    # published for a worker (the slow test runs one)
    assert redis_client.llen(Keys(settings.key_prefix).broker_queue(settings.queue)) == 1
    page = alice.get(f"/workflows/{wf['id']}/executions").json()
    assert [e["id"] for e in page["items"]] == [run["execution_id"]]
    metrics = alice.get("/metrics", headers=Tokens.header(tokens.admin)).text
    assert f'woow_queue_depth{{queue="{settings.queue}"}} 1.0' in metrics
