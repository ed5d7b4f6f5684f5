"""The operator console's HTTP contract (without a browser): sessions, CSRF, ownership, bad input.

The browser tests (tests/console/) drive the same pages in Chromium against real processes; these
check the refusals exhaustively and fast, on the app itself with this test's PostgreSQL and Redis.
"""

from __future__ import annotations

import re

import redis
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, make_workflow
from woow_scheduler.api import create_api
from woow_scheduler.api.console.session import COOKIE, LOGIN_COOKIE
from woow_scheduler.db import Database
from woow_scheduler.settings import Settings
from woow_scheduler.tokens import create_token, revoke_token


def login(client: TestClient, token: str) -> str:
    """Log in through the form; returns the session's CSRF token (read from a page)."""
    page = client.get("/ui/login")
    assert page.status_code == 200
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce is not None
    resp = client.post("/ui/login", data={"csrf": nonce.group(1), "token": token}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/ui/"
    return csrf_of(client.get("/ui/workflows").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def test_login_sets_an_httponly_strict_cookie_and_keeps_the_session_in_redis(
    api_client: TestClient, tokens: Tokens, redis_client: redis.Redis, key_prefix: str
) -> None:
    page = api_client.get("/ui/login")
    nonce = csrf_of(page.text)
    resp = api_client.post("/ui/login", data={"csrf": nonce, "token": tokens.alice}, follow_redirects=False)
    cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    stored = [k for k in redis_client.scan_iter(match=f"{key_prefix}console:session:*")]
    assert len(stored) == 1
    value = redis_client.get(stored[0])
    assert value is not None and session_id not in value and tokens.alice not in value and '"alice"' in value
    assert api_client.get("/ui/workflows").status_code == 200
    # logging out deletes the session server-side: the old cookie is worth nothing
    api_client.post("/ui/logout", data={"csrf": csrf_of(api_client.get("/ui/workflows").text)})
    assert list(redis_client.scan_iter(match=f"{key_prefix}console:session:*")) == []
    api_client.cookies.set(COOKIE, session_id, path="/ui")
    assert api_client.get("/ui/workflows", follow_redirects=False).status_code == 303


def test_pages_need_a_session_and_a_bad_token_is_refused(api_client: TestClient, tokens: Tokens) -> None:
    resp = api_client.get("/ui/workflows", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/ui/login?next=%2Fui%2Fworkflows"
    nonce = csrf_of(api_client.get("/ui/login").text)
    bad = api_client.post("/ui/login", data={"csrf": nonce, "token": "woow_nope"})
    assert bad.status_code == 401 and "token: unknown, revoked or expired" in bad.text
    empty = api_client.post("/ui/login", data={"csrf": csrf_of(bad.text), "token": ""})
    assert empty.status_code == 422 and "token: is required" in empty.text
    # the login form itself is CSRF-protected (double-submit cookie)
    api_client.cookies.delete(LOGIN_COOKIE, path="/ui")
    forged = api_client.post("/ui/login", data={"csrf": "guess", "token": tokens.alice})
    assert forged.status_code == 403 and "csrf:" in forged.text
    # an open redirect through ?next= is not possible
    nonce = csrf_of(api_client.get("/ui/login").text)
    resp = api_client.post(
        "/ui/login", data={"csrf": nonce, "token": tokens.alice, "next": "//evil.example/"}, follow_redirects=False
    )
    assert resp.headers["location"] == "/ui/"


def test_post_without_or_with_a_wrong_csrf_token_changes_nothing(alice: TestClient, tokens: Tokens) -> None:
    wf = make_workflow(alice, name="guarded")
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "t", "every": "1h"}).json()
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    for data in ({}, {"csrf": "forged"}):
        resp = alice.post(f"/ui/triggers/{tr['id']}/pause", data=data)
        assert resp.status_code == 403 and "csrf:" in resp.text
    resp = alice.post(f"/ui/triggers/{tr['id']}/pause", content=b'{"csrf": "x"}',
                      headers={"content-type": "application/json"})
    assert resp.status_code == 415
    alice.headers.update(Tokens.header(tokens.alice))
    assert alice.get(f"/triggers/{tr['id']}").json()["state"] == "NORMAL"


def test_pause_resume_and_delete_with_confirmation(alice: TestClient, tokens: Tokens) -> None:
    wf = make_workflow(alice, name="ops")
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "t", "cron": "0 0 9 * * ?"}).json()
    api = {"Authorization": f"Bearer {tokens.alice}"}
    alice.headers.pop("Authorization")
    csrf = login(alice, tokens.alice)
    page = alice.post(f"/ui/triggers/{tr['id']}/pause", data={"csrf": csrf})
    assert page.status_code == 200 and "Trigger paused." in page.text and "PAUSED" in page.text
    assert alice.get(f"/triggers/{tr['id']}", headers=api).json()["state"] == "PAUSED"
    alice.post(f"/ui/triggers/{tr['id']}/resume", data={"csrf": csrf})
    assert alice.get(f"/triggers/{tr['id']}", headers=api).json()["state"] == "NORMAL"
    unconfirmed = alice.post(f"/ui/workflows/{wf['id']}/delete", data={"csrf": csrf})
    assert unconfirmed.status_code == 422 and "confirm:" in unconfirmed.text
    assert alice.get(f"/workflows/{wf['id']}", headers=api).status_code == 200
    assert alice.get(f"/ui/workflows/{wf['id']}/delete").status_code == 200
    done = alice.post(f"/ui/workflows/{wf['id']}/delete", data={"csrf": csrf, "confirm": "yes"})
    assert done.status_code == 200 and "Workflow deleted." in done.text
    assert alice.get(f"/workflows/{wf['id']}", headers=api).status_code == 404


def test_bob_never_sees_alices_workflow(alice: TestClient, tokens: Tokens) -> None:
    wf = make_workflow(alice, name="alices")
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "t", "every": "1h"}).json()
    alice.headers.pop("Authorization")
    csrf = login(alice, tokens.bob)
    assert "alices" not in alice.get("/ui/workflows").text
    assert "alices" not in alice.get("/ui/upcoming?hours=24").text
    for url in (f"/ui/workflows/{wf['id']}", "/ui/workflows/alices", f"/ui/history?workflow={wf['id']}"):
        resp = alice.get(url)
        assert resp.status_code == 404 and "not found" in resp.text, url
    resp = alice.post(f"/ui/triggers/{tr['id']}/pause", data={"csrf": csrf})
    assert resp.status_code == 404
    resp = alice.post(f"/ui/workflows/{wf['id']}/run", data={"csrf": csrf})
    assert resp.status_code == 404


def test_bad_input_is_a_page_naming_the_field(alice: TestClient, tokens: Tokens) -> None:
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    cases = {
        "/ui/upcoming?hours=7": (422, "hours:"),
        "/ui/history?status=exploded": (422, "status:"),
        "/ui/history?since=yesterday": (422, "since:"),
        "/ui/history?since=2026-01-02T00:00&until=2026-01-01T00:00": (422, "until:"),
        "/ui/history?trigger=not-a-uuid": (404, "trigger:"),
        "/ui/history?since=2025-01-01T00:00&until=2025-03-01T00:00": (422, "since: the window"),
        "/ui/executions/not-a-uuid": (404, "execution:"),
        "/ui/workflows?owner=root": (422, "owner:"),
        "/ui/workflows?label=team": (422, "label: &#39;team&#39; must be KEY=VALUE"),
        "/ui/nowhere": (404, "page: not found"),
    }
    for url, (status, text) in cases.items():
        resp = alice.get(url)
        assert resp.status_code == status and text in resp.text, (url, resp.status_code, resp.text[-500:])
    huge = alice.post("/ui/logout", content=b"csrf=" + b"x" * 20_000,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413


def test_a_revoked_token_ends_its_sessions(api_client: TestClient, db: Database) -> None:
    view, token = create_token(db, user_id="carol")
    login(api_client, token)
    revoke_token(db, str(view.id))
    assert api_client.get("/ui/workflows", follow_redirects=False).status_code == 303


def test_pages_send_a_strict_content_security_policy(alice: TestClient, tokens: Tokens) -> None:
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    resp = alice.get("/ui/workflows")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff" and resp.headers["cache-control"] == "no-store"
    assert "/ui" not in str(alice.get("/openapi.json").json()["paths"])  # the API's schema stays the API's


def test_an_admin_sees_everyone_and_filters_by_owner(alice: TestClient, tokens: Tokens) -> None:
    make_workflow(alice, name="alices-one")
    alice.headers.update(Tokens.header(tokens.bob))
    make_workflow(alice, name="bobs-one")
    alice.headers.pop("Authorization")
    login(alice, tokens.admin)
    page = alice.get("/ui/workflows").text
    assert "alices-one" in page and "bobs-one" in page
    only_bob = alice.get("/ui/workflows", params={"owner": "bob"}).text
    assert "bobs-one" in only_bob and "alices-one" not in only_bob
    named = alice.get("/ui/workflows", params={"name": "ALICE"}).text
    assert "alices-one" in named and "bobs-one" not in named


def test_workflows_filter_by_label(alice: TestClient, tokens: Tokens) -> None:
    make_workflow(alice, name="books", labels={"team": "finance", "tier": "1"})
    make_workflow(alice, name="pager", labels={"team": "ops"})
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    finance = alice.get("/ui/workflows", params={"label": "team=finance"}).text
    assert "books" in finance and "pager" not in finance and "<code>tier=1</code>" in finance
    both = alice.get("/ui/workflows", params={"label": "team=finance, tier=2"}).text
    assert "books" not in both and "match the filter" in both


def test_redis_down_is_a_503_page_not_a_crash(settings: Settings, tokens: Tokens) -> None:
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_api(dead), raise_server_exceptions=False) as client:
        client.cookies.set(COOKIE, "x" * 40, path="/ui")
        resp = client.get("/ui/workflows")
    assert resp.status_code == 503 and "redis: unavailable" in resp.text


def test_overview_gives_the_status_verdict_and_only_admins_the_details(api_client: TestClient, tokens: Tokens) -> None:
    # no beat and no worker run here: woow status says degraded, and so does the console
    login(api_client, tokens.alice)
    page = api_client.get("/ui/").text
    assert "Status: <strong>degraded</strong>" in page and "an admin token sees the details" in page
    assert "no active beat holds the lock" not in page
    api_client.post("/ui/logout", data={"csrf": csrf_of(page)})
    login(api_client, tokens.admin)
    page = api_client.get("/ui/").text
    assert "Status: <strong>degraded</strong>" in page and "no active beat holds the lock" in page


def test_pages_of_a_run_in_progress_refresh_themselves(alice: TestClient, tokens: Tokens) -> None:
    # no worker runs here: the manual run stays queued, so its pages keep refreshing
    wf = make_workflow(alice, name="waiting")
    alice.headers.pop("Authorization")
    csrf = login(alice, tokens.alice)
    run = alice.post(f"/ui/workflows/{wf['id']}/run", data={"csrf": csrf}, follow_redirects=False)
    assert run.status_code == 303 and run.headers["location"].startswith("/ui/executions/")
    page = alice.get(run.headers["location"]).text
    assert 'id="execution" data-live="on"' in page and ">queued<" in page
    assert 'id="history-rows" data-live="on"' in alice.get("/ui/history").text
    assert 'id="history-rows" data-live="off"' in alice.get("/ui/history?status=succeeded").text


def test_a_read_only_token_sees_no_buttons_and_cannot_change_anything(alice: TestClient, db: Database) -> None:
    wf = make_workflow(alice, name="look-only")
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "t", "every": "1h"}).json()
    reader = create_token(db, user_id="alice", scopes=["read"])[1]
    api = dict(alice.headers)
    alice.headers.pop("Authorization")
    csrf = login(alice, reader)
    page = alice.get(f"/ui/workflows/{wf['id']}").text
    assert "read-only" in page and "Run now" not in page and "/pause" not in page and "Delete" not in page
    for url, data in ((f"/ui/triggers/{tr['id']}/pause", {}), (f"/ui/workflows/{wf['id']}/run", {}),
                      (f"/ui/workflows/{wf['id']}/delete", {"confirm": "yes"})):
        resp = alice.post(url, data={"csrf": csrf, **data})
        assert resp.status_code == 403 and "read-only" in resp.text, url
    assert alice.get(f"/triggers/{tr['id']}", headers=api).json()["state"] == "NORMAL"
    assert alice.get(f"/workflows/{wf['id']}/executions", headers=api).json()["items"] == []


def test_failed_logins_share_the_apis_limit(api_client: TestClient, settings: Settings, tokens: Tokens) -> None:
    for _ in range(settings.auth_failure_limit):
        resp = api_client.post("/ui/login", data={"csrf": csrf_of(api_client.get("/ui/login").text),
                                                  "token": "woow_guess"})
        assert resp.status_code == 401
    resp = api_client.post("/ui/login", data={"csrf": csrf_of(api_client.get("/ui/login").text),
                                              "token": tokens.alice})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "60" and "too many failed logins" in resp.text
    # and the API refuses the same address too: one counter
    assert api_client.get("/workflows", headers=Tokens.header(tokens.alice)).status_code == 429


def test_the_session_lives_as_long_as_the_setting_says(
    settings: Settings, tokens: Tokens, redis_client: redis.Redis, key_prefix: str
) -> None:
    short = settings.model_copy(update={"console_session_ttl": 120})
    with TestClient(create_api(short)) as client:
        nonce = csrf_of(client.get("/ui/login").text)
        resp = client.post("/ui/login", data={"csrf": nonce, "token": tokens.alice}, follow_redirects=False)
    assert "Max-Age=120" in resp.headers["set-cookie"]
    (key,) = redis_client.scan_iter(match=f"{key_prefix}console:session:*")
    assert 110 <= redis_client.ttl(key) <= 120


def test_user_text_is_escaped(alice: TestClient, tokens: Tokens) -> None:
    wf = make_workflow(alice, name="xss", description='<script>alert("x")</script><img src=x onerror=alert(1)>')
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    page = alice.get(f"/ui/workflows/{wf['id']}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_history_pages_go_on_without_repeating_or_losing_a_run(alice: TestClient, tokens: Tokens, db: Database) -> None:
    import uuid
    from datetime import UTC, datetime, timedelta

    from woow_scheduler.db.models import Execution

    wf = make_workflow(alice, name="busy")
    now = datetime.now(UTC)
    with db.session() as s:
        s.add_all(Execution(workflow_id=uuid.UUID(str(wf["id"])), status="succeeded",
                            created_at=now - timedelta(seconds=i)) for i in range(205))
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    seen: list[str] = []
    url = "/ui/history?workflow=busy"
    for _ in range(3):
        page = alice.get(url).text
        seen += re.findall(r'href="/ui/executions/([0-9a-f-]{36})"', page)
        found = re.search(r'href="(/ui/history\?[^"]+)" id="older"', page)
        if found is None:
            break
        url = found.group(1).replace("&amp;", "&")
    assert len(seen) == 205 and len(set(seen)) == 205


def test_history_pages_show_backfill_and_jitter_marks(alice: TestClient, tokens: Tokens, db: Database) -> None:
    import uuid
    from datetime import UTC, datetime

    from woow_scheduler.db.models import Execution, Trigger

    wf = make_workflow(alice, name="marked")
    tr = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "t", "every": "1h"}).json()
    when = datetime(2030, 1, 1, tzinfo=UTC)
    with db.session() as s:
        assert s.get(Trigger, uuid.UUID(tr["id"])) is not None
        back = Execution(workflow_id=uuid.UUID(str(wf["id"])), trigger_id=uuid.UUID(tr["id"]), status="succeeded",
                         scheduled_for=when, backfill=True)  # fmt: skip
        jit = Execution(workflow_id=uuid.UUID(str(wf["id"])), trigger_id=uuid.UUID(tr["id"]), status="succeeded",
                        scheduled_for=when.replace(hour=1), jitter_ms=1234)  # fmt: skip
        s.add_all([back, jit])
        s.flush()
        ids = (back.id, jit.id)
    alice.headers.pop("Authorization")
    login(alice, tokens.alice)
    listing = alice.get("/ui/history?workflow=marked").text
    assert listing.count("<td>backfill</td>") == 1 and listing.count("<td>trigger</td>") == 1
    assert "</a> · backfill</dd>" in alice.get(f"/ui/executions/{ids[0]}").text
    assert "(dispatched +1.234 s for jitter)" in alice.get(f"/ui/executions/{ids[1]}").text
