"""`python -m bench` runs and reports metrics beside baselines (only the pure cron bench here)."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main


def test_bench_entry_point_reports_the_cron_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--only", "cron_bench", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cron_next_per_s"] > 0 and out["croniter_next_per_s"] > 0
    assert out["ratios"]["cron_vs_croniter"] == pytest.approx(out["cron_next_per_s"] / out["croniter_next_per_s"],
                                                              rel=1e-2)
    assert out["machine"]["cores"] >= 1 and out["failures"] == []
    assert "cases" in out["details"]["cron_bench"]
