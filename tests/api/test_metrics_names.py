"""The API's /metrics uses the names declared in woow_scheduler/metrics.py (one list of names for
the API, the processes, the docs and the dashboard)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.conftest import Tokens
from woow_scheduler.metrics import BY_NAME


def test_api_metrics_are_declared_with_their_kind_and_labels(api_client: TestClient, tokens: Tokens) -> None:
    text = api_client.get("/metrics", headers=Tokens.header(tokens.admin)).text
    kinds = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert kinds, text
    for name, kind in kinds.items():
        assert name in BY_NAME, f"{name} is served by the API but not declared in metrics.py"
        declared = BY_NAME[name]
        assert "api" in declared.processes and declared.kind == kind, name
        labels = set(re.findall(rf"^{name}(?:_bucket|_count|_sum)?{{([^}}]*)}}", text, re.M))
        used = {pair.split("=", 1)[0] for group in labels for pair in group.split(",") if pair} - {"le"}
        assert used <= set(declared.labels), (name, used)
    assert {m for m, d in BY_NAME.items() if "api" in d.processes} == set(kinds)
