"""`python -m bench` runs and reports metrics beside baselines (only the pure cron bench here).

Run as a command, as ``make bench`` does: tests never import ``bench`` (benchmarks import
``tests.support`` only, so the two do not import each other)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_entry_point_reports_the_cron_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "cron_bench", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["cron_next_per_s"] > 0 and out["croniter_next_per_s"] > 0
    assert out["ratios"]["cron_vs_croniter"] == pytest.approx(out["cron_next_per_s"] / out["croniter_next_per_s"],
                                                              rel=1e-2)
    assert out["machine"]["cores"] >= 1 and out["failures"] == []
    assert "cases" in out["details"]["cron_bench"]
