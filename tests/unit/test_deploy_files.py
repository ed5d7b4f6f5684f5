"""docker-compose.yml, Procfile and Dockerfile must match the CLI (no Docker engine runs here)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from click.testing import CliRunner

from woow_scheduler.cli import cli
from woow_scheduler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _cli_accepts(argv: list[str]) -> None:
    """The command exists: `woow <argv...> --help` resolves through click."""
    words = [w for w in argv if not w.startswith("-")]
    cmd: object = cli
    path = []
    for w in words:
        sub = getattr(cmd, "commands", {}).get(w)
        if sub is None:
            break
        cmd, path = sub, [*path, w]
    assert path, f"{argv} names no woow command"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output


def test_compose_services_commands_and_environment() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgres", "redis", "migrate", "beat", "worker", "flower", "api"} <= set(services)
    assert services["migrate"]["command"] == ["woow", "db", "upgrade"]
    assert services["beat"]["deploy"]["replicas"] >= 2  # HA: one active, one standby
    for name in ("migrate", "beat", "worker", "flower", "api"):
        svc = services[name]
        assert svc["command"][0] == "woow"
        _cli_accepts(svc["command"][1:])
        env = svc["environment"]
        for key in env:
            assert key.startswith("WOOW_")
            assert key[5:].lower() in Settings.model_fields, f"{name}: {key} is not a setting"
        assert env["WOOW_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:" in env["WOOW_DATABASE_URL"] and "@redis:" in env["WOOW_REDIS_URL"]
        # credentials come from .env, never from the file itself
        assert "${POSTGRES_PASSWORD:?" in env["WOOW_DATABASE_URL"] and "${REDIS_PASSWORD:?" in env["WOOW_REDIS_URL"]
    for name in ("beat", "worker", "flower", "api"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]
    assert "--requirepass" in services["redis"]["command"]
    flower = services["flower"]
    assert flower["profiles"] == ["flower"] and all(p.startswith("127.0.0.1:") for p in flower["ports"])
    assert any(a.startswith("--basic-auth=") for a in flower["command"])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    beat_check = services["beat"]["healthcheck"]["test"]
    assert beat_check[1] == "woow"
    _cli_accepts(beat_check[2:])
    assert (ROOT / "Dockerfile").exists()


def test_procfile_runs_the_documented_commands() -> None:
    entries = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {"beat", "worker", "flower", "web"} <= set(entries)
    assert shlex.split(entries["web"])[:2] == ["woow", "api"]
    beat = shlex.split(entries["beat"])
    assert beat[:4] == ["celery", "-A", "woow_scheduler.worker", "beat"]
    assert beat[beat.index("-S") + 1] == "woow_scheduler.beat:WoowScheduler"
    worker = shlex.split(entries["worker"])
    assert worker[:4] == ["celery", "-A", "woow_scheduler.worker", "worker"]
    assert shlex.split(entries["flower"])[:2] == ["woow", "flower"]
    from woow_scheduler.beat import WoowScheduler  # the class the Procfile names exists

    assert WoowScheduler.__name__ == "WoowScheduler"
