"""The benchmark harness refuses to report a figure for a run that saw no work.

Run as commands, as ``make bench`` does (tests never import ``bench``).  No timing is asserted:
these check that a run which measured nothing exits non-zero with one line and prints no rate,
and that figures are named for what they measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(
    *args: str, extra_env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("WOOW_") and not k.startswith("WOOW_TEST_"))}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_broker_on_another_redis_database_is_refused_before_anything_runs() -> None:
    """The case that once printed ``exec_per_s: 1000000000.0``: the broker on another Redis DB
    than the one the harness watches."""
    done = _bench(
        "bench", "--quick", "--only", "exec_bench", "--json", extra_env={"WOOW_BROKER_URL": "redis://127.0.0.1:6379/15"}
    )
    assert done.returncode != 0
    assert "WOOW_BROKER_URL" in _one_line(done.stderr)
    assert "exec_per_s" not in done.stdout and "per_s" not in done.stdout


def test_a_stray_woow_variable_is_refused_by_a_single_benchmark_too() -> None:
    done = _bench("bench.dispatch_bench", "--quick", extra_env={"WOOW_REDIS_URL": "redis://127.0.0.1:6379/14"})
    assert done.returncode == 1
    assert "WOOW_REDIS_URL" in _one_line(done.stderr)
    assert done.stdout == ""


def test_an_execution_run_with_no_messages_prints_no_rate() -> None:
    done = _bench("bench.exec_bench", "--n", "0", "--rounds", "1")
    assert done.returncode == 1
    assert "no work" in _one_line(done.stderr)
    assert "/s" not in done.stdout


def test_a_dispatch_run_with_no_fires_prints_no_figure() -> None:
    done = _bench("bench.dispatch_bench", "--n", "0", "--json")
    assert done.returncode == 1
    assert "no work" in _one_line(done.stderr)
    assert done.stdout == ""


def test_a_no_work_benchmark_inside_the_harness_fails_the_run_with_its_reason() -> None:
    done = _bench("bench", "--only", "sync_bench", "--json", extra_env={"WOOW_CONFIG": "/nonexistent.toml"})
    assert done.returncode != 0
    assert "WOOW_CONFIG" in _one_line(done.stderr)
    assert "sync_s" not in done.stdout


def test_dispatch_figures_are_named_for_the_number_of_fires_measured() -> None:
    """A run of 5 fires reports ``dispatch_n`` = 5 and ``dispatch_s``, never ``dispatch_10k_s``."""
    done = _bench("bench.dispatch_bench", "--n", "5", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["dispatch_n"] == 5
    assert out["dispatch_s"] > 0 and out["redbeat_dispatch_s"] > 0
    assert "dispatch_10k_s" not in out and "redbeat_dispatch_10k_s" not in out
    assert out["ratio_dispatch_vs_redbeat"] > 0


def test_a_burst_with_no_fires_prints_no_figure() -> None:
    done = _bench("bench.burst_bench", "--n", "0", "--json")
    assert done.returncode == 1
    assert "no work" in _one_line(done.stderr)
    assert done.stdout == ""


def test_a_small_burst_reports_its_size_the_lock_and_the_baseline_of_the_same_run() -> None:
    done = _bench("bench.burst_bench", "--n", "20", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["burst_n"] == 20 and out["redbeat_burst_n"] == 20
    assert "burst_100k_s" not in out
    assert out["burst_lock_held"] is True and out["burst_lock_polls"] > 0
    assert out["burst_per_s"] > 0 and out["redbeat_burst_per_s"] > 0


def test_idle_and_lateness_runs_with_nothing_to_watch_print_no_figure() -> None:
    for module in ("bench.idle_bench", "bench.lateness_bench"):
        done = _bench(module, "--n", "0", "--json")
        assert done.returncode == 1, module
        assert "no work" in _one_line(done.stderr)
        assert done.stdout == ""


def test_a_small_sync_reports_redis_bytes_per_entry_beside_redbeats() -> None:
    done = _bench("bench.sync_bench", "--n", "30", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["sync_n"] == 30 and "sync_100k_s" not in out and "sync_300k_s" not in out
    assert out["sync_bytes_per_entry"] > 0 and out["redbeat_bytes_per_entry"] > 0
