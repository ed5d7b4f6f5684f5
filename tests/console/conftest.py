"""The browser tests' stack: a real ``woow api`` (started as docs/console.md says), a Celery worker
and beat, this module's own PostgreSQL database and Redis prefix, and headless Chromium.

Chromium is Debian's ``chromium`` package driven by Playwright for Python (no browser download);
``.ci/run`` installs it.  Without it the tests are skipped with that reason, except under
``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import REDIS_URL, create_test_database, drop_test_database, pg_url_for
from tests.procs import ROOT, CeleryProcess, celery_beat, celery_worker, child_env, wait_for, woow_command
from woow_scheduler.settings import Settings, load_settings

DOC = ROOT / "docs" / "console.md"
#: screenshots of every page at 1280x800 (gitignored; ``make screenshots`` copies them into docs/)
SHOTS = ROOT / "build" / "screenshots"
SCHEDULER = "woow_scheduler.beat:WoowScheduler"


def chromium_path() -> str:
    """The system Chromium, or skip (fail under CI=true) with the reason."""
    found = os.environ.get("WOOW_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    reason = None
    if not found:
        reason = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[dev]')"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    assert found is not None
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def doc_commands() -> list[str]:
    """The shell lines of docs/console.md's ``sh`` blocks, as written."""
    lines: list[str] = []
    in_block = False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```sh" if not in_block else False
            continue
        if in_block and line.strip() and not line.lstrip().startswith("#"):
            lines.append(line.strip())
    return lines


@dataclass
class Stack:
    settings: Settings
    url: str
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    procs: list[CeleryProcess] = field(default_factory=list)

    def woow(self, *args: str) -> Any:
        """``woow ARGS --json`` as an operator runs it; its parsed output."""
        out = subprocess.run([*woow_command(*args)], env=self.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_path()


@pytest.fixture(scope="module")
def stack(pg_template: str, chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("console")
    dbname = create_test_database(pg_template)
    prefix = f"woowtest:console:{uuid.uuid4().hex[:8]}:"
    settings = load_settings(
        database_url=pg_url_for(dbname),
        redis_url=REDIS_URL,
        key_prefix=prefix,
        queue=f"q-{prefix.split(':')[2]}",
        heartbeat_interval=1.0,
    )
    port = free_port()
    env = child_env(settings, {"WOOW_API_PORT": str(port)})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    stack = Stack(settings=settings, url=f"http://127.0.0.1:{port}", env=env)
    try:
        with ExitStack() as stop:
            for line in doc_commands():
                argv = shlex.split(line.rstrip("&").strip())
                assert argv[0] == "woow", f"docs/console.md: not a woow command: {line}"
                if line.endswith("&"):
                    proc = CeleryProcess(argv[1], settings, log_path=logs / f"{argv[1]}.log",
                                         env={"WOOW_API_PORT": str(port)}, command=woow_command(*argv[1:]),
                                         ready=re.compile(r"Uvicorn running on"))
                    stop.callback(proc.stop)
                    stack.procs.append(proc.start())
                    continue
                out = subprocess.run(woow_command(*argv[1:]), env=env, capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
                if argv[1:3] == ["token", "create"]:  # by user (the first one) and by name
                    stack.tokens.setdefault(argv[argv.index("--user") + 1], out.stdout.strip())
                    stack.tokens[argv[argv.index("--name") + 1]] = out.stdout.strip()
            for proc in stack.procs:
                proc.wait_ready(30)
            stop.enter_context(celery_worker(settings, log_dir=logs))
            stop.enter_context(celery_beat(settings, "-S", SCHEDULER, log_dir=logs))
            wait_for(lambda: _ready(stack.url), 30, "the API's /readyz")
            yield stack
    finally:
        drop_test_database(dbname)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _ready(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # a page's own status is the test's business; a failed script, style or image is a bug
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}")
          if r.status >= 400 and r.request.resource_type != "document" and r.request.resource_type != "fetch"
          else None)
    yield pg
    context.close()
    assert not errors, f"browser errors: {errors}"
