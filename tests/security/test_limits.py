"""Exhausting the service, guessing tokens, reading the operational endpoints and stored secrets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.security.conftest import LOG, auth, counts, one_line_problem
from woow_scheduler.api import create_api
from woow_scheduler.db import Database
from woow_scheduler.db.models import ApiToken, Execution, Workflow
from woow_scheduler.settings import Settings


def test_huge_deep_and_nul_bodies_are_refused_without_a_write(
    client: TestClient, bob: dict[str, str], db: Database
) -> None:
    before = counts(db)
    huge = {"name": "big", "description": "x" * (2 * 1024 * 1024), "steps": LOG}
    one_line_problem(client.post("/workflows", json=huge, headers=bob), 413, "body")
    deep: object = "leaf"
    for _ in range(900):
        deep = [deep]
    body = {"name": "deep", "steps": [{"name": "s", "type": "log", "config": {"message": "m", "x": deep}}]}
    one_line_problem(client.post("/workflows", json=body, headers=bob), 422, "body")
    one_line_problem(client.post("/workflows", json={"name": "n\u0000ul", "steps": LOG}, headers=bob), 422, "body")
    one_line_problem(client.get("/workflows/a%00b", headers=bob), 422, "path")
    # a chunked body (no content-length) is cut off too
    chunks = (b"x" * 65536 for _ in range(40))
    resp = client.post("/workflows", content=chunks, headers={**bob, "content-type": "application/json"})
    one_line_problem(resp, 413, "body")
    assert counts(db) == before


def test_step_count_and_config_size_limits(client: TestClient, bob: dict[str, str], db: Database) -> None:
    before = counts(db)
    many = [{"name": f"s{i}", "type": "log", "config": {"message": "m"}} for i in range(101)]
    detail = one_line_problem(client.post("/workflows", json={"name": "many", "steps": many}, headers=bob),
                              422, "steps")["detail"]
    assert "at most 100" in detail
    big = [{"name": "s", "type": "log", "config": {"message": "m" * 9000, "level": "info"}}] * 1
    fat = {"name": "fat", "steps": [{**big[0], "config": {"message": "m" * 9_000}}]}
    assert client.post("/workflows", json=fat, headers=bob).status_code == 201  # 9 KB is fine
    huge_cfg = {"name": "huge", "steps": [{"name": "s", "type": "http",
                                           "config": {"url": "https://example.com", "body": "b" * 70_000}}]}
    one_line_problem(client.post("/workflows", json=huge_cfg, headers=bob), 422, "steps[0].config")
    assert counts(db)["workflows"] == before["workflows"] + 1


def test_quotas_and_minimum_interval_for_ordinary_users(
    sec_settings: Settings, token: Callable[..., str], db: Database
) -> None:
    settings = sec_settings.model_copy(update={"max_workflows_per_user": 2, "max_triggers_per_user": 2})
    bob, admin = auth(token("bob")), auth(token("root", admin=True))
    with TestClient(create_api(settings), raise_server_exceptions=False) as c:
        ids = [c.post("/workflows", json={"name": f"w{i}", "steps": LOG}, headers=bob).json()["id"] for i in range(2)]
        before = counts(db)
        one_line_problem(c.post("/workflows", json={"name": "w3", "steps": LOG}, headers=bob), 422, "name")
        # too often: every 1 s, or a cron firing every second
        one_line_problem(c.post(f"/workflows/{ids[0]}/schedule", json={"every": "1s"}, headers=bob), 422, "every")
        one_line_problem(c.post(f"/workflows/{ids[0]}/schedule", json={"cron": "* * * * * ?"}, headers=bob),
                         422, "cron")
        assert counts(db) == before
        for i in range(2):
            assert c.post(f"/workflows/{ids[i]}/schedule", json={"every": "1m"}, headers=bob).status_code == 201
        one_line_problem(c.post(f"/workflows/{ids[1]}/schedule", json={"every": "1h"}, headers=bob), 422, "body")
        # an admin is trusted with both
        assert c.post("/workflows", json={"name": "a1", "steps": LOG}, headers=admin).status_code == 201
        assert c.post(f"/workflows/{ids[0]}/schedule", json={"every": "1s", "name": "fast"},
                      headers=admin).status_code == 201


def test_extreme_numbers_and_far_dates_never_give_a_5xx_or_a_write(
    client: TestClient, bob: dict[str, str], db: Database
) -> None:
    wf = client.post("/workflows", json={"name": "w", "steps": LOG}, headers=bob).json()
    url = f"/workflows/{wf['id']}/schedule"
    hostile = [
        '{"every": 1e20}',
        '{"every": "1h", "misfire_threshold": 1e309}',
        '{"every": "1h", "misfire_threshold": NaN}',
        '{"every": "1h", "repeat": 1000000000000000000000000000000}',
        '{"every": "1s", "start": "9999-12-31T23:59:59Z"}',
        '{"every": "1h", "start": "9999-12-31T23:59:59Z"}',
        '{"cron": "0 0 0 1 1 ? 2099", "tz": "UTC", "end": "9999-12-31T23:59:59Z"}',
        '{"at": "9999-12-31T23:59:59Z"}',
        '{"every": -1}',
        '{"every": "1h", "max_catchup": 10000000000000000000000000000000000000000}',
    ]
    failures: list[tuple[str, int]] = []
    for body in hostile:
        before = counts(db)
        resp = client.post(url, content=body, headers={**bob, "content-type": "application/json"})
        failures.append((body, resp.status_code)) if resp.status_code >= 500 else None
        if resp.status_code >= 400:
            assert counts(db) == before, body
    assert failures == []


def test_read_only_and_expired_tokens(client: TestClient, token: Callable[..., str], db: Database) -> None:
    reader = auth(token("bob", "read"))
    writer = auth(token("bob"))
    made = client.post("/workflows", json={"name": "mine", "steps": LOG}, headers=writer).json()
    assert client.get(f"/workflows/{made['id']}", headers=reader).status_code == 200
    before = counts(db)
    for method, path in (("post", "/workflows"), ("put", f"/workflows/{made['id']}"),
                         ("delete", f"/workflows/{made['id']}"), ("post", f"/workflows/{made['id']}/run")):
        resp = getattr(client, method)(path, json={"name": "x", "steps": LOG} if method != "delete" else None,
                                       headers=reader) if method != "delete" else client.delete(path, headers=reader)
        assert "write" in one_line_problem(resp, 403)["detail"]
    assert counts(db) == before
    with db.session() as s:  # the token expires
        s.execute(ApiToken.__table__.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert one_line_problem(client.get("/workflows", headers=reader), 401)["detail"].endswith("expired or revoked")


def test_failed_token_lookups_are_rate_limited(client: TestClient, bob: dict[str, str],
                                               sec_settings: Settings) -> None:
    for i in range(sec_settings.auth_failure_limit):
        assert client.get("/workflows", headers=auth(f"woow_guess{i}")).status_code == 401
    limited = one_line_problem(client.get("/workflows", headers=auth("woow_guess-next")), 429)
    assert "too many failed" in limited["detail"]
    # the whole address waits: guessing right now does not tell the guesser anything
    assert client.get("/workflows", headers=bob).status_code == 429


def test_metrics_need_a_scope_and_do_not_scan_per_scrape(
    client: TestClient, token: Callable[..., str], bob: dict[str, str], db: Database
) -> None:
    assert one_line_problem(client.get("/metrics"), 401)
    assert one_line_problem(client.get("/metrics", headers=bob), 403)
    scraper = auth(token("prometheus", "metrics"))
    wf = client.post("/workflows", json={"name": "w", "steps": LOG}, headers=bob).json()
    first = client.get("/metrics", headers=scraper)
    assert first.status_code == 200 and 'woow_executions{status="queued"} 0.0' in first.text
    with db.session() as s:
        s.add(Execution(workflow_id=uuid.UUID(wf["id"]), user_id="bob"))
    # within WOOW_METRICS_CACHE_SECONDS the figures come from the shared cache, not the table
    assert 'woow_executions{status="queued"} 0.0' in client.get("/metrics", headers=scraper).text


def test_readyz_names_the_dependency_but_no_address_or_credentials(
    sec_settings: Settings, db: Database
) -> None:
    broken = sec_settings.model_copy(
        update={"redis_url": "redis://:s3cretpw@127.0.0.1:1/0",
                "database_url": "postgresql+psycopg://woowuser:dbpw-hunter2@127.0.0.1:1/nope"}
    )
    with TestClient(create_api(broken), raise_server_exceptions=False) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    text = resp.text
    body = resp.json()
    assert body["checks"]["database"] == {"ok": False, "error": "database unreachable"}
    assert body["checks"]["redis"] == {"ok": False, "error": "redis unreachable"}
    for leak in ("127.0.0.1", "s3cretpw", "dbpw-hunter2", "woowuser", ":1"):
        assert leak not in text, leak


def test_step_secrets_are_write_only(client: TestClient, bob: dict[str, str], db: Database) -> None:
    steps = [{"name": "call", "type": "http", "config": {
        "url": "https://example.com/hook", "headers": {"Authorization": "Bearer real-secret", "X-Trace": "t1"},
        "body": {"session": "sess-secret", "keep": 1}}}]
    made = client.post("/workflows", json={"name": "w", "steps": steps}, headers=bob)
    assert made.status_code == 201 and "real-secret" not in made.text and "sess-secret" not in made.text
    shown = client.get(f"/workflows/{made.json()['id']}", headers=bob).json()
    config = shown["steps"][0]["config"]
    assert config["headers"] == {"Authorization": "***", "X-Trace": "t1"} and config["body"]["session"] == "***"
    # sending the shown document back keeps the stored secrets; a new value replaces them
    shown_back = {"name": "w", "steps": shown["steps"]}
    assert client.put(f"/workflows/{shown['id']}", json=shown_back, headers=bob).status_code == 200
    with db.session() as s:
        stored = s.scalar(select(Workflow.steps).where(Workflow.id == uuid.UUID(shown["id"])))
    assert stored is not None
    assert stored[0]["config"]["headers"]["Authorization"] == "Bearer real-secret"
    assert stored[0]["config"]["body"]["session"] == "sess-secret"
    assert "real-secret" not in json.dumps(client.get("/workflows", headers=bob).json())


def test_url_passwords_are_masked_in_output_and_kept_on_a_round_trip(
    client: TestClient, token: Callable[..., str], db: Database
) -> None:
    carol = auth(token("carol", "read", "write", "shell"))
    argv = ["pg_dump", "postgresql://backup:pg-hunter2@db:5432/app"]
    made = client.post("/workflows", json={"name": "dump", "steps": [
        {"name": "d", "type": "shell", "config": {"argv": argv}}]}, headers=carol)
    assert made.status_code == 201 and "pg-hunter2" not in made.text
    shown = made.json()
    assert shown["steps"][0]["config"]["argv"][1] == "postgresql://backup:***@db:5432/app"
    assert client.put(f"/workflows/{shown['id']}", json={"name": "dump", "steps": shown["steps"]},
                      headers=carol).status_code == 200
    with db.session() as s:
        stored = s.scalar(select(Workflow.steps).where(Workflow.id == uuid.UUID(shown["id"])))
    assert stored is not None and stored[0]["config"]["argv"] == argv


def test_a_log_message_cannot_forge_a_log_line(sec_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    from woow_scheduler.engine.runner import run_steps
    from woow_scheduler.permissions import ALL_PRIVILEGES

    forged = "ok\n2026-12-05 INFO woow.engine execution succeeded workflow=alice-wf"
    with caplog.at_level("INFO", logger="woow.step"):
        run_steps([{"name": "l", "type": "log", "config": {"message": forged}}], settings=sec_settings,
                  workflow_id=uuid.uuid4(), workflow_name="wf", execution_id=uuid.uuid4(), privileges=ALL_PRIVILEGES)
    lines = [r.getMessage() for r in caplog.records if r.name == "woow.step"]
    assert lines and all("\n" not in line for line in lines) and "\\n2026" in lines[0]


def test_token_list_shows_scopes_and_expiry(db: Database, token: Callable[..., str]) -> None:
    from woow_scheduler.tokens import create_token, list_tokens

    create_token(db, user_id="bob", scopes=["read"], expires_in=timedelta(days=1))
    (view,) = [v for v in list_tokens(db) if v.user_id == "bob"]
    assert view.scopes == ["read"] and view.expires_at is not None and not view.is_admin


def test_redis_failure_counter_tolerates_redis_down(sec_settings: Settings, bob: dict[str, str]) -> None:
    down = sec_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_api(down), raise_server_exceptions=False) as c:
        assert c.get("/workflows", headers=auth("woow_wrong")).status_code == 401
        assert c.get("/workflows", headers=bob).status_code == 200



