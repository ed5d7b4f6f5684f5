"""docs/security.md's commands, executed as written through the CLI, and what they give."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from woow_scheduler.cli import cli
from woow_scheduler.db import Database
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import list_tokens

ROOT = Path(__file__).resolve().parents[2]


def doc_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "security.md").read_text()
    lines = [line.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S) for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line]


def test_security_doc_commands_run_and_give_the_scopes_they_say(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WOOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WOOW_REDIS_URL", settings.redis_url)
    commands = doc_commands()
    assert len(commands) >= 5
    for argv in commands:
        assert argv[0] == "woow"
        result = CliRunner().invoke(cli, argv[1:])
        assert result.exit_code == 0, (argv, result.output)
    by_user = {t.user_id: t for t in list_tokens(db)}
    assert by_user["alice"].scopes == ["read", "write"] and by_user["alice"].expires_at is None
    assert by_user["dashboard"].scopes == ["read"] and by_user["dashboard"].expires_at is not None
    assert by_user["prometheus"].scopes == ["metrics"]
    assert by_user["bob"].scopes == ["read", "shell", "write"]
