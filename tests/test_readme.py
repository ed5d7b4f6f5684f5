"""The README's commands, executed: `woow dev` (what `make demo` runs) and the walkthrough against
PostgreSQL and Redis, line by line, with its background processes really started."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.procs import CeleryProcess, child_env, wait_for, woow_command
from tests.support.servers import free_port
from woow_scheduler.settings import Settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [re.sub(r"\s+#.*$", "", line).strip() for line in lines if line.strip()]


def ci_commands() -> list[str]:
    """The lines of .ci/run that CI executes, stripped (comments and blank lines left out): a doc
    command CI runs exactly as written is one of them."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_quick_start_names_make_demo_and_make_test() -> None:
    lines = readme_block("## Quick start")
    assert [line.split()[:2] for line in lines] == [["make", "demo"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/woow dev" in makefile  # make demo runs woow dev
    # CI runs the README's test command, then its benchmark command, both exactly as written
    ci = ci_commands()
    assert "make test" in ci, ".ci/run must run the README's test command"
    at = ci.index("make test")
    assert ci[at : at + 2] == ["make test", "make bench BENCH_ARGS=--quick"]
    assert "make bench BENCH_ARGS=--quick" in readme_block("## Development")


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_woow_dev_fires_the_demo_and_leaves_no_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOOW_")}
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "dev.out"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "woow_scheduler", "dev", "--dir", str(tmp_path / "dev"),
             "--cron", "*/2 * * * * ?"],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
    children: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            children.update(_descendants(proc.pid))
            if log.read_text().count(" succeeded") >= 2:
                break
            time.sleep(0.5)
        out = log.read_text()
        assert "seeded workflow 'demo'" in out
        assert out.count(" succeeded") >= 2, out
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=40)
    out = log.read_text()
    assert proc.returncode == 0, out
    assert "dev: stopped" in out
    # the line it printed points the plain CLI at the demo: `woow history` shows what it ran
    export = next(line for line in out.splitlines() if "export WOOW_DATABASE_URL=" in line)
    assigned = dict(w.split("=", 1) for w in shlex.split(export.split("export ", 1)[1]))
    cli_env = {**env, "WOOW_DATABASE_URL": assigned["WOOW_DATABASE_URL"]}
    history = subprocess.run([sys.executable, "-m", "woow_scheduler", "history", "--workflow", "demo", "--json"],
                             env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert history.returncode == 0, history.stderr
    assert sum(1 for row in json.loads(history.stdout) if row["status"] == "succeeded") >= 2, history.stdout
    time.sleep(0.5)
    alive = [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"processes left behind: {alive}"


def _flower_workers(port: int, proc: CeleryProcess) -> Any:
    """Flower's /api/workers once it lists a worker; fails at once if Flower exited."""
    assert proc.alive(), f"woow flower exited:\n{proc.log()[-3000:]}"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=5) as r:
            return json.loads(r.read()) or None
    except OSError:
        return None


def test_walkthrough_against_postgresql_and_redis(settings: Settings, tmp_path: Path) -> None:
    lines = readme_block("## Using it against PostgreSQL and Redis")
    env = child_env(settings)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    woow = woow_command()
    background: list[CeleryProcess] = []
    try:
        for line in lines:
            if not line.startswith("woow "):
                continue  # venv creation, exports and activation: done by this test's environment
            argv = shlex.split(line.rstrip("&").strip())
            if line.endswith("&"):
                extra: dict[str, str] = {}
                if argv[1] == "flower":
                    # as written (`--port N`, the space form), on a free port: the machine is shared
                    assert "--port" in argv, line
                    port = free_port()
                    argv[argv.index("--port") + 1] = str(port)
                    extra["FLOWER_UNAUTHENTICATED_API"] = "true"
                proc = CeleryProcess(argv[1], settings, log_path=tmp_path / f"{argv[1]}.log", env=extra,
                                     command=[*woow, *argv[1:]]).start()
                background.append(proc)
                if argv[1] == "flower":
                    workers = wait_for(functools.partial(_flower_workers, port, proc), 40, "Flower to list the worker")
                    assert workers, proc.log()[-3000:]
                continue
            if argv[1:3] == ["workflow", "run"]:
                time.sleep(5)  # the worker started just above
            result = subprocess.run([*woow, *argv[1:]], env=env, capture_output=True, text=True, timeout=120)
            if argv[1] == "status":
                assert result.returncode in (0, 1), result.stdout + result.stderr
            else:
                assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        for p in background:  # every background command of the README is still up at the end
            assert p.alive(), f"woow {p.kind} exited:\n{p.log()[-3000:]}"
    finally:
        for p in background:
            p.stop(timeout=20)
