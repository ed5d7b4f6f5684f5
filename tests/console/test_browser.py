"""What an operator does in the console, in headless Chromium against a real API, worker, beat,
PostgreSQL and Redis (tests/console/conftest.py).  Each visited page is screenshotted at 1280x800
into build/screenshots/, and checked for broken links and form controls without a label."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.console.conftest import SHOTS, Stack
from tests.procs import wait_for
from woow_scheduler.db import Database
from woow_scheduler.service import Service
from woow_scheduler.tokens import create_token

pytestmark = pytest.mark.slow

STEPS = [{"name": "hello", "type": "log", "config": {"message": "hi"}}]
SECRET_STEPS = [{"name": "call", "type": "http",
                 "config": {"url": "https://example.com/hook", "headers": {"X-Api-Key": "hunter2"}}}]
_checked: set[str] = set()


def api(stack: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.tokens[user]}"}, timeout=10)


def make_workflow(stack: Stack, user: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with api(stack, user) as client:
        wf = client.post("/workflows", json={"name": name, "steps": STEPS})
        assert wf.status_code == 201, wf.text
        tr = client.post(f"/workflows/{wf.json()['id']}/schedule",
                         json={"name": "morning", "cron": "0 0 9 * * ?", "tz": "Europe/Berlin"})
        assert tr.status_code == 201, tr.text
        client.post(f"/workflows/{wf.json()['id']}/schedule", json={"name": "often", "every": "20m"})
    return wf.json(), tr.json()


def log_in(page: Any, stack: Stack, token: str, path: str = "/ui/") -> None:
    page.goto(stack.url + path)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def check(page: Any, name: str | None = None) -> None:
    """Screenshot (when named), every console link answers < 400, every control has a label."""
    if name:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))
    origin = page.url.split("/ui", 1)[0]
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        url = href.split("#", 1)[0]
        if url.startswith(origin) and url not in _checked and url != page.url.split("#", 1)[0]:
            status = page.request.get(url).status
            assert status < 400, f"broken link on {page.url}: {url} answered {status}"
            _checked.add(url)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                 .map(e => e.outerHTML)
                 .concat([...document.querySelectorAll('button, a')]
                 .filter(e => !e.textContent.trim() && !e.getAttribute('aria-label')).map(e => e.outerHTML))"""
    )
    assert not unlabelled, f"controls without a label on {page.url}: {unlabelled}"


def test_operator_logs_in_pauses_runs_and_reads_a_run(page: Any, stack: Stack) -> None:
    _, tr = make_workflow(stack, "alice", "nightly-report")
    log_in(page, stack, stack.tokens["alice"])
    check(page, "overview")
    # the verdict of woow status, with beat and worker up (a snapshot: a worker slow to answer the
    # 1 s ping on a loaded machine makes one check degraded, so look again until healthy)
    def healthy() -> bool:
        if "Status: healthy" in page.locator("#verdict").inner_text():
            return True
        page.reload()
        return False

    wait_for(healthy, 30, "the overview to say healthy")
    assert page.locator("#workers").inner_text() != "none answered"

    page.get_by_role("link", name="Workflows").click()
    check(page, "workflows")
    page.get_by_role("link", name="nightly-report").click()
    row = page.locator(f"#trigger-{tr['id']}")
    assert "UTC" in row.locator("[data-next]").inner_text()
    assert "at 09:00:00" in row.inner_text()
    check(page, "workflow")

    # pause: the page and the CLI agree
    row.get_by_role("button", name="Pause morning").click()
    assert page.locator(f"#trigger-{tr['id']} [data-state]").inner_text() == "PAUSED"
    listed = {t["id"]: t["state"] for t in stack.woow("trigger", "list", "--json")}
    assert listed[tr["id"]] == "PAUSED"
    page.locator(f"#trigger-{tr['id']}").get_by_role("button", name="Resume morning").click()
    assert page.locator(f"#trigger-{tr['id']} [data-state]").inner_text() == "NORMAL"

    # run now: the execution page turns succeeded without a reload
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url("**/ui/executions/*")
    page.evaluate("window.__same_page = true")
    page.locator("#status").filter(has_text="succeeded").wait_for(timeout=30_000)
    assert page.evaluate("window.__same_page") is True
    assert "hello" in page.locator("#steps").inner_text()
    assert page.locator("dt:text-is('Lock fence') + dd").inner_text().isdigit()  # a forbid run holds a fenced lock
    check(page, "execution")

    page.get_by_role("link", name="History").click()
    assert "nightly-report" in page.locator(".executions").inner_text()
    check(page, "history")

    page.get_by_role("link", name="Upcoming").click()
    page.get_by_role("link", name="next 24 h").click()
    lane = page.locator("g.lane[data-trigger='morning']")
    hover = lane.locator("circle title").first.text_content()
    assert "Europe/Berlin" in hover and "UTC" in hover and "nightly-report/morning" in hover
    assert page.locator("g.lane[data-trigger='often'] circle").count() >= 70
    check(page, "upcoming")

    # secrets in step configs are shown as ***
    db = Database(stack.settings.database_url)
    try:
        secret = Service(db, stack.settings).create_workflow(
            {"name": "with-secret", "steps": SECRET_STEPS, "owner_user_id": "alice"})
    finally:
        db.dispose()
    page.goto(f"{stack.url}/ui/workflows/{secret.id}")
    assert '"X-Api-Key": "***"' in page.locator(".steps").inner_text() and "hunter2" not in page.content()

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("API token").wait_for()
    check(page, "login")
    page.goto(stack.url + "/ui/workflows")
    assert page.url.startswith(stack.url + "/ui/login")


def test_readable_without_javascript_on_a_phone_and_by_keyboard(page: Any, stack: Stack, browser: Any) -> None:
    wf, tr = make_workflow(stack, "alice", "phone-check")
    plain = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    try:
        nojs = plain.new_page()
        log_in(nojs, stack, stack.tokens["alice"], f"/ui/workflows/{wf['id']}")
        assert nojs.locator(f"#trigger-{tr['id']} [data-state]").inner_text() == "NORMAL"
        nojs.get_by_role("link", name="History", exact=True).click()
        assert nojs.locator("svg.strip").count() == 1
    finally:
        plain.close()
    log_in(page, stack, stack.tokens["alice"], f"/ui/workflows/{wf['id']}")
    for _ in range(40):  # the Run now button is reached with the keyboard alone
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "run-now":
            break
    else:
        pytest.fail("Run now is not reachable with Tab")
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/ui/workflows/{wf['id']}", "/ui/history", "/ui/upcoming"):
        page.goto(stack.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways on a phone by {overflow}px"


def test_another_user_and_a_forged_post_are_refused(page: Any, stack: Stack) -> None:
    wf, tr = make_workflow(stack, "alice", "alices-secret")
    db = Database(stack.settings.database_url)
    try:
        bob = create_token(db, user_id="bob")[1]
    finally:
        db.dispose()
    log_in(page, stack, bob)
    assert "alices-secret" not in page.goto(stack.url + "/ui/workflows").text()
    resp = page.goto(f"{stack.url}/ui/workflows/{wf['id']}")
    assert resp.status == 404 and "not found" in page.locator("#error-detail").inner_text()
    check(page)
    page.get_by_role("button", name="Log out").click()

    # alice's read-only token sees her workflow without a single button, and cannot change it
    log_in(page, stack, stack.tokens["wallboard"], f"/ui/workflows/{wf['id']}")
    assert "read-only" in page.locator("#whoami").inner_text()
    assert page.locator(f"#trigger-{tr['id']} [data-state]").inner_text() == "NORMAL"
    assert page.locator("main button, main a.button").count() == 0
    csrf = page.locator("header input[name=csrf]").get_attribute("value")
    refused = page.request.post(f"{stack.url}/ui/triggers/{tr['id']}/pause", form={"csrf": csrf})
    assert refused.status == 403 and "read-only" in refused.text()
    page.get_by_role("button", name="Log out").click()

    # alice may pause this trigger, but not with a POST that lacks the session's CSRF token
    log_in(page, stack, stack.tokens["alice"])
    forged = page.request.post(f"{stack.url}/ui/triggers/{tr['id']}/pause", form={"reason": "forged"})
    assert forged.status == 403 and "csrf:" in forged.text()
    listed = {t["id"]: t["state"] for t in stack.woow("trigger", "list", "--json")}
    assert listed[tr["id"]] == "NORMAL"
