"""Prometheus metrics from the processes themselves: real ``woow worker`` / ``woow beat`` with
``--metrics-port``, scraped over HTTP while fires flow; and the dashboard in deploy/ names only
metrics that exist."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.procs import CeleryProcess, child_env, wait_for, woow_command
from woow_scheduler.db import Database, Trigger, Workflow
from woow_scheduler.messaging.publish import enqueue_fire
from woow_scheduler.metrics import BY_NAME, METRICS
from woow_scheduler.settings import Settings, load_settings
from woow_scheduler.worker import get_app

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """``name{labels}`` -> value of every sample on the port ({} while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def families(samples: dict[str, float]) -> set[str]:
    names = {k.split("{", 1)[0] for k in samples}
    return names | {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in names}


@pytest.fixture
def msettings(settings: Settings) -> Settings:
    return load_settings(**{**settings.model_dump(), "queue": f"m-{uuid.uuid4().hex[:6]}",
                            "metrics_address": "127.0.0.1", "beat_lock_timeout": 4.0, "heartbeat_interval": 1.0,
                            "reconcile_interval": 1.0})


def _workflow(db: Database) -> Workflow:
    with db.session() as s:
        wf = Workflow(name=f"m-{uuid.uuid4().hex[:6]}", concurrency="allow",
                      steps=[{"name": "hi", "type": "log", "config": {"message": "x"}}])
        s.add(wf)
    return wf


@pytest.mark.slow
def test_worker_metrics_port_counts_outcomes_across_pool_children(msettings: Settings, db: Database,
                                                                   tmp_path: Path) -> None:
    wf = _workflow(db)
    with db.session() as s:
        tr = Trigger(workflow_id=wf.id, name="t", type="once", spec={"type": "once"})
        s.add(tr)
    port = free_port()
    worker = CeleryProcess("worker", msettings, log_path=tmp_path / "worker.log", command=woow_command(
        "worker", "--metrics-port", str(port), "--concurrency", "2", "--without-gossip", "--without-mingle"))
    worker.start()
    app = get_app(msettings)
    try:
        worker.wait_ready(40)
        wait_for(lambda: scrape(port), 20, "the worker's metrics port")
        base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=100)
        for i in range(6):
            enqueue_fire(app, msettings, workflow_id=wf.id, workflow_name=wf.name, trigger_id=tr.id, user_id=None,
                         scheduled_for=base + timedelta(seconds=i))
        enqueue_fire(app, msettings, workflow_id=wf.id, workflow_name=wf.name, trigger_id=tr.id, user_id=None,
                     scheduled_for=base)  # the same fire again: a duplicate
        done = wait_for(lambda: (m := scrape(port)).get('woow_worker_executions_total{outcome="succeeded"}', 0) >= 6
                        and m.get('woow_worker_executions_total{outcome="duplicate"}', 0) >= 1 and m, 30,
                        "six successes and a duplicate on the metrics port")
        assert done["woow_worker_run_duration_seconds_count"] >= 6
        assert worker.alive()
        names = families(done)
        missing = [m.name for m in METRICS if "worker" in m.processes and m.name not in names]
        assert missing == [], missing
        # the compose health check of a worker container: this host's worker answers
        health = subprocess.run(woow_command("status", "--check", "workers", "--local"), env=child_env(msettings),
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        app.close()
        worker.stop()
    down = subprocess.run(woow_command("status", "--check", "workers", "--local"), env=child_env(msettings),
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "no worker on this host" in down.stdout, down.stdout + down.stderr


def test_dashboard_names_only_metrics_that_exist() -> None:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    assert exprs
    used = {re.sub(r"_(bucket|count|sum)$", "", n) for e in exprs for n in re.findall(r"\bwoow_[a-z_]+", e)}
    assert used, exprs
    assert sorted(used - set(BY_NAME)) == []
    # every process metric is on the dashboard
    assert sorted({m.name for m in METRICS if set(m.processes) & {"beat", "worker"}} - used) == []


def test_every_metric_is_documented_in_operations_md() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    assert [m.name for m in METRICS if f"| `{m.name}` | {m.kind} | {', '.join(m.processes)} |" not in text] == []


@pytest.mark.slow
def test_beat_metrics_port_shows_fires_leadership_and_reconciles(msettings: Settings, db: Database,
                                                                  tmp_path: Path) -> None:
    wf = _workflow(db)
    with db.session() as s:
        s.add(Trigger(workflow_id=wf.id, name="every-second", type="cron",
                      spec={"type": "cron", "expression": "* * * * * ?"}))
    port = free_port()
    beat = CeleryProcess("beat", msettings, log_path=tmp_path / "beat.log",
                         command=woow_command("beat", "--metrics-port", str(port)))
    beat.start()
    try:
        first = wait_for(lambda: (m := scrape(port)).get("woow_beat_leader") == 1.0 and m, 30, "a leading beat")
        assert [m.name for m in METRICS if "beat" in m.processes and m.name not in families(first)] == []
        wait_for(lambda: scrape(port).get("woow_beat_redbeat_entries") == 1.0, 20, "the entry, by the full reconcile")
        later = wait_for(lambda: (m := scrape(port)).get('woow_beat_fires_published_total{trigger_type="cron"}', 0)
                         >= first.get('woow_beat_fires_published_total{trigger_type="cron"}', 0) + 3 and m, 20,
                         "three more cron fires published")
        assert later["woow_beat_publish_lateness_seconds_count"] >= 3
        assert 0.0 <= later["woow_beat_lock_age_seconds"] < msettings.beat_lock_timeout
        assert later['woow_beat_reconcile_duration_seconds_count{kind="full"}'] >= 1
        wait_for(lambda: scrape(port).get('woow_beat_reconcile_duration_seconds_count{kind="incremental"}', 0) >= 1,
                 20, "an incremental reconcile")
        assert later['woow_queue_depth{queue="' + msettings.queue + '"}'] >= 1  # no worker: fires wait
        health = subprocess.run(woow_command("status", "--check", "beat", "--local"), env=child_env(msettings),
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        beat.stop()
    assert "Traceback" not in beat.log(), beat.log()[-3000:]
