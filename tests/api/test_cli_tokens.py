"""``woow token create/list/revoke`` and ``woow api --help`` through click's runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from woow_scheduler.cli import cli
from woow_scheduler.settings import Settings


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WOOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WOOW_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("WOOW_KEY_PREFIX", settings.key_prefix)
    return CliRunner()


def test_token_commands(runner: CliRunner, api_client: TestClient) -> None:
    plain = runner.invoke(cli, ["token", "create", "--user", "carol", "--name", "ui"], catch_exceptions=False)
    assert plain.exit_code == 0, plain.output
    secret = plain.stdout.strip()
    assert secret.startswith("woow_") and "not shown again" in plain.stderr
    auth = {"Authorization": f"Bearer {secret}"}
    created = api_client.post("/workflows", json={"name": "carols"}, headers=auth)
    assert created.json()["owner_user_id"] == "carol"

    admin = json.loads(runner.invoke(cli, ["token", "create", "--user", "ops", "--admin", "--json"]).stdout)
    assert admin["is_admin"] and admin["token"].startswith("woow_")

    listed = json.loads(runner.invoke(cli, ["token", "list", "--json"]).stdout)
    assert {t["user_id"] for t in listed} == {"carol", "ops"}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    carol = next(t for t in listed if t["user_id"] == "carol")
    assert "carol" in runner.invoke(cli, ["token", "list"]).stdout

    revoked = runner.invoke(cli, ["token", "revoke", carol["id"]])
    assert revoked.exit_code == 0 and "revoked token" in revoked.stdout
    assert api_client.get("/workflows", headers=auth).status_code == 401

    missing = runner.invoke(cli, ["token", "revoke", "not-an-id"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: token")
    bad_user = runner.invoke(cli, ["token", "create", "--user", "a b"])
    assert bad_user.exit_code == 2


def test_api_command_help(runner: CliRunner) -> None:
    out = runner.invoke(cli, ["api", "--help"]).stdout
    assert "--host" in out and "--port" in out and "--workers" in out
