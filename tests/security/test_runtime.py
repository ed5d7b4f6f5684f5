"""Run time: stored workflows meet the same rules on a real worker (and the http guard at connect time).

The stored attacks are written straight into PostgreSQL, as a workflow saved before these rules (or
by an owner who has since lost a grant) would be; bob then runs them through the API and reads the
history.  Nothing may run, leak or reach the inside of the network.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.procs import celery_worker, wait_for
from tests.security.conftest import auth
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Workflow
from woow_scheduler.engine.netguard import DestinationRefused, Destinations
from woow_scheduler.engine.runner import run_steps
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import revoke_token

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.url = ""


@contextmanager
def http_server(host: str = "127.0.0.1", *, redirect_to: str | None = None,
                endless: bool = False) -> Iterator[Recorder]:
    """A local server recording every request; it redirects, streams forever or says ok."""
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            rec.paths.append(self.path)
            if redirect_to:
                self.send_response(302)
                self.send_header("location", redirect_to)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if endless:
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                chunk = b"y" * 65536
                try:
                    for _ in range(100_000):  # about 6 GB if anyone read it all
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:
                    return
                return
            body = b"internal secret"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    rec.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def stored(db: Database, owner: str, steps: list[dict[str, Any]]) -> uuid.UUID:
    with db.session() as s:
        wf = Workflow(name=f"stored-{uuid.uuid4().hex[:6]}", steps=steps, owner_user_id=owner)
        s.add(wf)
        s.flush()
        return wf.id


def run_and_wait(client: TestClient, who: dict[str, str], workflow_id: uuid.UUID | str) -> dict[str, Any]:
    resp = client.post(f"/workflows/{workflow_id}/run", headers=who)
    assert resp.status_code == 202, resp.text
    ex_id = resp.json()["execution_id"]

    def final() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/executions/{ex_id}", headers=who).json()
        return body if body["status"] in ("succeeded", "failed", "timed_out", "skipped") else None

    result: dict[str, Any] = wait_for(final, 40, f"execution {ex_id} to end")
    return result


def test_stored_attacks_are_refused_on_a_real_worker(
    client: TestClient, sec_settings: Settings, db: Database, token: Callable[..., str], tmp_path: Path
) -> None:
    alice = auth(token("alice"))
    bob = auth(token("bob"))
    alice_wf = client.post("/workflows", json={"name": "alice-wf", "steps": [
        {"name": "secret", "type": "log", "config": {"message": "alice-private-output"}}]}, headers=alice).json()
    # 1. celery_task sending woow's own task for alice's workflow into a row of bob's
    with db.session() as s:
        bob_row = Execution(workflow_id=uuid.UUID(alice_wf["id"]), user_id="bob", status=ExecutionStatus.RETRYING)
        s.add(bob_row)
        s.flush()
        bob_row_id = str(bob_row.id)
    forged = stored(db, "bob", [{"name": "forge", "type": "celery_task", "config": {
        "task": "woow.execute_workflow", "queue": sec_settings.queue,
        "kwargs": {"workflow_id": alice_wf["id"], "execution_id": bob_row_id, "v": 1}}}])
    marker = tmp_path / "shell-ran"
    with http_server() as inside:
        # 2. http into the network, stored without the grant
        fetch = stored(db, "bob", [{"name": "fetch", "type": "http", "config": {"url": inside.url + "/metrics"}}])
        # 3. shell saved while bob had the grant, then the grant is revoked
        shell_view, shell_token = token_pair(db, "bob", "shell")
        shelled = client.post("/workflows", json={"name": "shelled", "steps": [
            {"name": "sh", "type": "shell", "config": {"argv": ["touch", str(marker)]}}]},
            headers=auth(shell_token))
        assert shelled.status_code == 201, shelled.text
        revoke_token(db, str(shell_view))
        # 4. with a live grant: the environment handed to the program holds no settings, no secrets
        carol = auth(token("carol", "read", "write", "shell"))
        env_wf = client.post("/workflows", json={"name": "env", "steps": [
            {"name": "plain", "type": "shell", "config": {"argv": ["env"]}},
            {"name": "inherited", "type": "shell", "config": {"argv": ["env"], "inherit_env": True}}]},
            headers=carol).json()

        with celery_worker(sec_settings, log_dir=tmp_path, env={"DEPLOY_API_TOKEN": "tok-hunter2"}):
            forged_run = run_and_wait(client, bob, forged)
            fetch_run = run_and_wait(client, bob, fetch)
            shell_run = run_and_wait(client, bob, shelled.json()["id"])
            env_run = run_and_wait(client, carol, env_wf["id"])
        assert inside.paths == []  # the worker never connected

    assert forged_run["status"] == "failed" and "woow.execute_workflow" in forged_run["error"]
    assert "never be sent" in forged_run["error"]
    with db.session() as s:  # alice's workflow did not run; bob's row kept nothing of hers
        rows = list(s.scalars(select(Execution).where(Execution.workflow_id == uuid.UUID(alice_wf["id"]))))
    assert [(str(r.id), r.status) for r in rows] == [(bob_row_id, ExecutionStatus.RETRYING)]
    assert "alice-private-output" not in str(rows[0].steps)

    assert fetch_run["status"] == "failed" and "http_private" in fetch_run["error"]
    assert "internal secret" not in str(fetch_run)

    assert shell_run["status"] == "failed" and "lacks the 'shell' privilege" in shell_run["error"]
    assert not marker.exists()

    assert env_run["status"] == "succeeded", env_run["error"]
    plain, inherited = (step["output"]["stdout"] for step in env_run["steps"])
    settings_in = [line for line in (plain + inherited).splitlines()
                   if line.startswith("WOOW_") and not line.startswith("WOOW_EXECUTION_ID=")]
    assert settings_in == []  # the worker itself runs with WOOW_DATABASE_URL, WOOW_REDIS_URL, ...
    assert sorted(line.split("=")[0] for line in plain.splitlines()) == ["PATH", "WOOW_EXECUTION_ID"]
    assert "tok-hunter2" not in inherited and "postgresql" not in inherited
    assert "PYTHONPATH=" in inherited  # the rest of the environment is there


def token_pair(db: Database, user: str, *scopes: str) -> tuple[uuid.UUID, str]:
    from woow_scheduler.tokens import create_token

    view, secret = create_token(db, user_id=user, scopes=("read", "write", *scopes))
    return view.id, secret


# -- the http guard at connect time (in-process runs of the same runner) -----------------------------


def http_run(settings: Settings, config: dict[str, Any], privileges: frozenset[str] = frozenset()) -> Any:
    return run_steps([{"name": "h", "type": "http", "config": config}], settings=settings,
                     workflow_id=uuid.uuid4(), workflow_name="wf", execution_id=uuid.uuid4(), privileges=privileges)


def test_every_redirect_hop_is_checked(sec_settings: Settings) -> None:
    settings = sec_settings.model_copy(update={"http_allow_redirects": True,
                                               "http_allowed_networks": ["127.0.0.1/32"]})
    with http_server("127.0.0.2") as target, http_server(redirect_to=target.url + "/secret") as entry:
        out = http_run(settings, {"url": entry.url + "/start", "follow_redirects": True})
    assert out.status is ExecutionStatus.FAILED
    assert "127.0.0.2 is not a public address" in (out.error or "")
    assert entry.paths == ["/start"] and target.paths == []  # the first hop was allowed, the second never made


def test_the_body_is_read_up_to_the_cap(sec_settings: Settings) -> None:
    settings = sec_settings.model_copy(update={"http_allowed_networks": ["127.0.0.1/32"], "http_body_cap": 1000})
    with http_server(endless=True) as endless:
        t0 = time.monotonic()
        out = http_run(settings, {"url": endless.url, "timeout": 20})
    assert out.status is ExecutionStatus.SUCCEEDED, out.error
    assert out.steps[0]["output"]["truncated"] is True and len(out.steps[0]["output"]["body"]) == 1000
    assert time.monotonic() - t0 < 10


def test_names_are_resolved_and_every_address_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kwargs: Any) -> Any:  # DNS answers an attacker controls
        answers = {"metadata.attacker.example": "169.254.169.254", "mixed.attacker.example": "10.1.2.3"}
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    guard = Destinations.build([], [])
    with pytest.raises(DestinationRefused, match=r"169\.254\.169\.254"):
        guard.resolve("metadata.attacker.example", 80)
    with pytest.raises(DestinationRefused, match=r"10\.1\.2\.3"):
        guard.resolve("mixed.attacker.example", 80)
    assert Destinations.build(["mixed.attacker.example"], []).resolve("mixed.attacker.example", 80) == ["10.1.2.3"]
    assert Destinations.build([], ["10.0.0.0/8"]).resolve("mixed.attacker.example", 80) == ["10.1.2.3"]
    assert Destinations.build([], [], any_address=True).resolve("metadata.attacker.example", 80)


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0.0.0.0", "[::]", "[::ffff:169.254.169.254]",
                                  "localhost", "LOCALHOST.", "169.254.169.254"])
def test_disguised_internal_addresses_are_refused(host: str) -> None:
    with pytest.raises(DestinationRefused):
        Destinations.build([], []).resolve(host.strip("[]"), 80)
