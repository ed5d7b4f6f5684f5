"""scripts/suite.py, the runner of `make test`: a failure in either stream fails the suite."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _suite_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("suite", ROOT / "scripts" / "suite.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_named_path_runs_one_plain_pytest() -> None:
    suite = _suite_module()
    assert suite._names_a_path(["tests/unit"])
    assert suite._names_a_path(["-q", "tests/unit/test_layout.py::test_x"])
    assert not suite._names_a_path(["-q", "-k", "beat", "-p", "no:cacheprovider"])


def test_probe_of_the_suite_runner() -> None:
    """Selected only by the test below, through the runner; fails when it asks."""
    assert os.environ.get("WOOW_SUITE_PROBE") != "fail"


def test_a_failing_test_fails_make_tests_runner_and_both_streams_report() -> None:
    env = {**os.environ, "WOOW_SUITE_PROBE": "fail"}
    done = subprocess.run(
        [sys.executable, "scripts/suite.py", "-q", "-p", "no:cacheprovider", "-k", "test_probe_of_the_suite_runner"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert "suite: both streams done" in done.stdout
    assert "main exit 1, chaos exit 5" in done.stdout  # the chaos stream collected nothing: not a failure
