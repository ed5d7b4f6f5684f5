"""docs/triggers.md, executed: every `woow` command of its sh blocks runs as written (CLI runner,
real PostgreSQL and Redis); a sh block followed by a text block must print exactly that text.
A ```yaml file=NAME block is written to NAME in the directory the commands run in."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from woow_scheduler.cli import cli
from woow_scheduler.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "triggers.md"
_BLOCK = re.compile(r"```(sh|text)\n(.*?)```", re.S)
_FILE = re.compile(r"```\w+ file=(\S+)\n(.*?)```", re.S)


def _blocks() -> list[tuple[list[str], str | None]]:
    found = _BLOCK.findall(DOC.read_text())
    out: list[tuple[list[str], str | None]] = []
    for i, (kind, body) in enumerate(found):
        if kind != "sh":
            continue
        expected = found[i + 1][1] if i + 1 < len(found) and found[i + 1][0] == "text" else None
        out.append(([line for line in body.splitlines() if line.strip()], expected))
    return out


def test_doc_has_commands_for_each_new_type() -> None:
    text = " ".join(" ".join(cmds) for cmds, _ in _blocks())
    for flag in ("--daily-every", "--between", "--days", "--calendar-every", "--preserve-hour", "--jitter"):
        assert flag in text


def test_doc_covers_the_history_marks_and_calendars_in_files() -> None:
    text = DOC.read_text()
    for needle in ('"backfill": true', '"jitter_ms"', "calendars.NAME.field", "woow workflow apply -f books.yaml"):
        assert needle in text
    assert dict(_FILE.findall(text)).keys() == {"books.yaml"}


def test_every_command_runs_as_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, body in _FILE.findall(DOC.read_text()):
        (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WOOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WOOW_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("WOOW_KEY_PREFIX", settings.key_prefix)
    runner = CliRunner()
    for commands, expected in _blocks():
        output: Any = None
        for line in commands:
            argv = shlex.split(line)
            assert argv[0] == "woow", line
            result = runner.invoke(cli, argv[1:], catch_exceptions=False)
            assert result.exit_code == 0, f"{line}\n{result.output}"
            output = result.stdout
        if expected is not None:
            assert [ln.rstrip() for ln in output.strip().splitlines()] == [
                ln.rstrip() for ln in expected.strip().splitlines()
            ], output
