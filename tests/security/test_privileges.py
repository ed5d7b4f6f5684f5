"""Bob, an ordinary user, tries the strategies that run code or reach inside the network.

Each refusal is a one-line problem+json naming the field, and nothing is written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import LOG, auth, counts, one_line_problem
from woow_scheduler.api import create_api
from woow_scheduler.db import Database
from woow_scheduler.settings import Settings


def step(kind: str, **config: Any) -> dict[str, Any]:
    return {"name": "s", "type": kind, "config": config}


def wf(*steps: dict[str, Any], name: str = "attack") -> dict[str, Any]:
    return {"name": name, "steps": list(steps)}


def refused(client: TestClient, who: dict[str, str], body: dict[str, Any], status: int, field: str,
            db: Database) -> str:
    before = counts(db)
    detail = one_line_problem(client.post("/workflows", json=body, headers=who), status, field)["detail"]
    assert counts(db) == before
    return str(detail)


PRIVILEGED = [
    ("shell", step("shell", argv=["sh", "-c", "id; env"])),
    ("python", step("python", callable="tests.worker.callables:add", args=[1, 2])),
    ("celery_task", step("celery_task", task="woow.execute_workflow")),
]


@pytest.mark.parametrize(("privilege", "the_step"), PRIVILEGED, ids=[p for p, _ in PRIVILEGED])
def test_code_running_strategies_need_their_privilege(
    client: TestClient, bob: dict[str, str], db: Database, privilege: str, the_step: dict[str, Any],
    token: Callable[..., str],
) -> None:
    if privilege == "celery_task":  # refused before the privilege: woow's own task is never allowed
        detail = refused(client, bob, wf(the_step), 422, "steps[0].config", db)
        assert "woow.execute_workflow" in detail and "never" in detail
        return
    detail = refused(client, bob, wf(the_step), 403, "steps[0].type", db)
    assert f"'{privilege}' privilege" in detail and f"strategy '{privilege}'" in detail
    # the same step with the grant is accepted
    granted = auth(token("bob", "read", "write", privilege))
    assert client.post("/workflows", json=wf(the_step), headers=granted).status_code == 201


def test_celery_task_never_reaches_woow_tasks_or_queue_even_with_the_privilege(
    client: TestClient, token: Callable[..., str], db: Database, sec_settings: Settings
) -> None:
    bob = auth(token("bob", "read", "write", "celery_task"))
    for task in ("woow.execute_workflow", "WOOW.execute_workflow", "celery.chain", "celery.map", "anything.else"):
        detail = refused(client, bob, wf(step("celery_task", task=task)), 422, "steps[0].config", db)
        assert task in detail
    # allow-listed task, but to woow's own queue
    settings = sec_settings.model_copy(
        update={"celery_task_names": ["app.*"], "celery_task_queues": ["jobs", sec_settings.queue]}
    )
    with TestClient(create_api(settings), raise_server_exceptions=False) as other:
        detail = refused(other, bob, wf(step("celery_task", task="app.send", queue=sec_settings.queue)), 422,
                         "steps[0].config", db)
        assert "woow's own queue" in detail
        assert other.post("/workflows", json=wf(step("celery_task", task="app.send", queue="jobs")),
                          headers=bob).status_code == 201
        # without the privilege: 403 even for an allow-listed task
        plain = auth(token("carol"))
        refused(other, plain, wf(step("celery_task", task="app.send", queue="jobs")), 403, "steps[0].type", db)


@pytest.mark.parametrize(
    ("url", "extra", "why"),
    [
        ("http://127.0.0.1:8000/metrics", {}, "127.0.0.1 is not a public address"),
        ("http://169.254.169.254/latest/meta-data/", {}, "169.254.169.254 is not a public address"),
        ("http://[::1]:5432/", {}, "::1 is not a public address"),
        ("http://[::ffff:127.0.0.1]/", {}, "not a public address"),
        ("http://10.0.0.5/", {}, "10.0.0.5 is not a public address"),
        ("http://localhost:6379/", {}, "the worker itself"),
        ("https://example.com/", {"verify_tls": False}, "verify_tls is false"),
        ("https://example.com/", {"follow_redirects": True}, "follow_redirects is true"),
    ],
)
def test_http_to_inside_the_network_or_unsafe_needs_http_private(
    client: TestClient, bob: dict[str, str], db: Database, token: Callable[..., str],
    url: str, extra: dict[str, Any], why: str,
) -> None:
    detail = refused(client, bob, wf(step("http", url=url, **extra)), 403, "steps[0].type", db)
    assert "http_private" in detail and why in detail
    granted = auth(token("bob", "read", "write", "http_private"))
    assert client.post("/workflows", json=wf(step("http", url=url, **extra)), headers=granted).status_code == 201


def test_public_http_and_plain_steps_need_nothing(client: TestClient, bob: dict[str, str]) -> None:
    body = wf(step("http", url="https://example.com/hook"), *[{"name": "l", "type": "log", "config": {"message": "m"}}])
    assert client.post("/workflows", json=body, headers=bob).status_code == 201


def test_passwords_in_urls_are_refused_and_never_echoed(client: TestClient, bob: dict[str, str],
                                                       db: Database) -> None:
    detail = refused(client, bob, wf(step("http", url="http://admin:pw-hunter2@example.com/")), 422,
                     "steps[0].config", db)
    assert "pw-hunter2" not in detail and "credentials in the URL" in detail


def test_replacing_a_workflow_is_checked_like_creating_it(client: TestClient, bob: dict[str, str],
                                                         db: Database) -> None:
    created = client.post("/workflows", json=wf(*LOG), headers=bob).json()
    before = counts(db)
    resp = client.put(f"/workflows/{created['id']}", json=wf(step("shell", argv=["id"])), headers=bob)
    one_line_problem(resp, 403, "steps[0].type")
    assert counts(db) == before
    assert client.get(f"/workflows/{created['id']}", headers=bob).json()["steps"] == created["steps"]


def test_an_admin_cannot_hand_a_privileged_workflow_to_a_user_without_the_grant(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    body = {**wf(step("shell", argv=["id"])), "owner_user_id": "bob"}
    refused(client, admin, body, 403, "steps[0].type", db)
    mine = client.post("/workflows", json=wf(step("shell", argv=["id"])), headers=admin)
    assert mine.status_code == 201, mine.text


def test_shell_programs_allow_list(client: TestClient, token: Callable[..., str], db: Database,
                                   sec_settings: Settings) -> None:
    bob = auth(token("bob", "read", "write", "shell"))
    settings = sec_settings.model_copy(update={"shell_programs": [sys.executable]})
    with TestClient(create_api(settings), raise_server_exceptions=False) as other:
        detail = refused(other, bob, wf(step("shell", argv=["sh", "-c", "id"])), 422, "steps[0].config", db)
        assert "program 'sh' is not allowed" in detail
        ok = other.post("/workflows", json=wf(step("shell", argv=[sys.executable, "-V"])), headers=bob)
        assert ok.status_code == 201, ok.text


def test_shell_steps_default_to_an_empty_environment(client: TestClient, token: Callable[..., str]) -> None:
    bob = auth(token("bob", "read", "write", "shell"))
    created = client.post("/workflows", json=wf(step("shell", argv=["env"])), headers=bob).json()
    assert "inherit_env" not in created["steps"][0]["config"]  # the default, false, is not stored
