"""End to end: a trigger scheduled over HTTP fires on a real beat and a real worker.

Beat and worker are real ``celery`` processes (tests/procs.py) on this test's database and Redis
prefix; the test talks to them only through the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, make_workflow
from tests.procs import celery_beat, celery_worker, wait_for
from woow_scheduler.settings import Settings

pytestmark = pytest.mark.slow

SCHEDULER = "woow_scheduler.beat:WoowScheduler"



def test_trigger_scheduled_over_http_fires_on_a_real_worker(
    alice: TestClient, settings: Settings, tmp_path: Path, tokens: Tokens
) -> None:
    wf = make_workflow(alice, name="e2e")
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "tick", "every": "1s"}).json()
    url = f"/workflows/{wf['id']}/executions"

    with celery_worker(settings, log_dir=tmp_path) as worker, \
            celery_beat(settings, "-S", SCHEDULER, log_dir=tmp_path) as beat:

        def fired() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = alice.get(url, params={"status": "succeeded"}).json()["items"]
            return [e for e in items if e["trigger_id"] == tr["id"]]

        try:
            runs = wait_for(fired, 40, "a succeeded fire of the trigger")
        except AssertionError:
            raise AssertionError(f"beat:\n{beat.log()[-3000:]}\nworker:\n{worker.log()[-3000:]}") from None
        ready = wait_for(lambda: alice.get("/readyz").status_code == 200 and alice.get("/readyz").json(),
                         20, "/readyz to see the active beat")

        run = alice.post(f"/workflows/{wf['id']}/run").json()
        manual = wait_for(lambda: (e := alice.get(f"/executions/{run['execution_id']}").json())["status"]
                          == "succeeded" and e, 30, "the manual run to succeed")

        alice.post(f"/triggers/{tr['id']}/pause")
        live = alice.get(f"/workflows/{wf['id']}/triggers").json()[0]

    fire = runs[0]
    assert fire["user_id"] == "alice"  # the token's user flows into the fire and its history
    assert fire["scheduled_for"] is not None and fire["steps"][0]["name"] == "hello"
    assert ready["checks"]["beat"]["ok"]
    assert (manual["user_id"], manual["trigger_id"]) == ("alice", None)
    assert live["state"] == "PAUSED" and live["previous_fire_time"] is not None
    metrics = alice.get("/metrics", headers=Tokens.header(tokens.admin)).text
    assert "woow_fire_lateness_seconds_count 0.0" not in metrics
