"""The ops path end to end: the CLI's own process commands (as the Procfile and docker-compose run
them), `woow status`, `woow sync --full` after Redis loss, and Flower's HTTP API."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.procs import CeleryProcess, child_env, wait_for, woow_command
from tests.support.servers import free_port
from woow_scheduler.cli import cli
from woow_scheduler.settings import Settings, load_settings

pytestmark = pytest.mark.slow


@contextmanager
def woow_process(settings: Settings, log: Path, *args: str, extra_env: dict[str, str] | None = None
                 ) -> Iterator[CeleryProcess]:
    """``woow ARGS`` running as the Procfile runs it; TERM then KILL of its group at the end."""
    proc = CeleryProcess(args[0], settings, log_path=log, env=extra_env, command=woow_command(*args))
    try:
        yield proc.start()
    finally:
        proc.stop(timeout=20)


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    return load_settings(**{**settings.model_dump(), "queue": f"q-{settings.key_prefix.split(':')[2]}",
                            "beat_lock_timeout": 6.0, "heartbeat_interval": 1.0})


def invoke(settings: Settings, *args: str) -> Any:
    env = {k: v for k, v in child_env(settings).items() if k.startswith("WOOW_")}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def test_cli_processes_status_sync_and_flower(ops_settings: Settings, redis_client: Any, tmp_path: Path) -> None:
    s = ops_settings
    step = '{"name": "hello", "type": "log", "config": {"message": "hi"}}'
    assert invoke(s, "workflow", "create", "ops-demo", "--step", step).exit_code == 0
    assert invoke(s, "trigger", "add", "ops-demo", "--cron", "* * * * * ?", "--name", "every-second").exit_code == 0

    # nothing runs yet: degraded (no beat, no worker), exit 1
    down = invoke(s, "status", "--json")
    assert down.exit_code == 1, down.output
    assert json.loads(down.stdout)["state"] == "degraded"

    port = free_port()
    with woow_process(s, tmp_path / "beat.log", "beat"), \
            woow_process(s, tmp_path / "worker.log", "worker", "--concurrency", "2", "--without-gossip",
                         "--without-mingle"), \
            woow_process(s, tmp_path / "flower.log", "flower", f"--port={port}", "--address=127.0.0.1",
                         extra_env={"FLOWER_UNAUTHENTICATED_API": "true"}):

        def succeeded() -> int:
            rows = json.loads(invoke(s, "history", "--workflow", "ops-demo", "--status", "succeeded",
                                     "--json").stdout)
            return len(rows) >= 3 and len(rows)

        try:
            wait_for(succeeded, 60, "three succeeded executions")
        except AssertionError:
            for name in ("beat", "worker"):
                print(name, (tmp_path / f"{name}.log").read_text()[-3000:])
            raise

        healthy = invoke(s, "status", "--json")
        report = json.loads(healthy.stdout)
        assert healthy.exit_code == 0, report["problems"]
        assert report["state"] == "healthy" and report["checks"]["workers"]["detail"]["alive"]

        # Redis loses the schedule: woow sync --full rebuilds it from PostgreSQL, keeping the last fire
        entry_keys = [k for k in redis_client.scan_iter(f"{s.key_prefix}redbeat:*") if not k.endswith(":lock")]
        assert entry_keys
        redis_client.delete(*entry_keys)
        synced = invoke(s, "sync", "--full", "--json")
        assert synced.exit_code == 0, synced.output
        assert json.loads(synced.stdout)["added"] == 1
        before = len(json.loads(invoke(s, "history", "--workflow", "ops-demo", "--json", "--limit", "1000").stdout))
        wait_for(lambda: len(json.loads(invoke(s, "history", "--workflow", "ops-demo", "--json", "--limit",
                                                 "1000").stdout)) > before + 2, 30, "fires after the rebuild")

        # Flower sees the worker and the tasks under their workflow name
        def flower_tasks() -> Any:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks?limit=50", timeout=3) as r:
                    tasks = json.loads(r.read())
            except OSError:
                return None
            return [t for t in tasks.values() if t.get("name") == "workflow:ops-demo"]

        tasks = wait_for(flower_tasks, 40, "Flower to list workflow:ops-demo tasks")
        assert any(t.get("state") == "SUCCESS" for t in tasks)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=10) as r:
            assert json.loads(r.read())  # at least one worker known
