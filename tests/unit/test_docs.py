from __future__ import annotations

from pathlib import Path

from woow_scheduler.cli.docgen import render, render_config_example

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == render(), "docs/cli.md is stale: run python -m woow_scheduler.cli.docgen > docs/cli.md"


def test_config_example_is_current() -> None:
    current = (ROOT / "config" / "woow.example.toml").read_text()
    assert current == render_config_example(), (
        "config/woow.example.toml is stale: run python -m woow_scheduler.cli.docgen --config > config/woow.example.toml"
    )
