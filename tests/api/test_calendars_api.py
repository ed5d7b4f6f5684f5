"""/calendars and calendars, labels and the Quartz trigger types through POST /workflows/{id}/schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from fastapi.testclient import TestClient

from woow_scheduler.settings import Settings

from ..scheduler.conftest import published
from .conftest import Tokens, make_workflow


def test_calendar_routes_and_a_trigger_that_uses_one(api_client: TestClient, tokens: Tokens) -> None:
    admin, alice = Tokens.header(tokens.admin), Tokens.header(tokens.alice)
    body = {"type": "weekly", "exclude": ["SAT", "SUN"], "timezone": "Europe/Berlin"}
    assert api_client.put("/calendars/weekdays", json=body, headers=alice).status_code == 403
    created = api_client.put("/calendars/weekdays", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "excluding SAT, SUN (Europe/Berlin)"
    bad = api_client.put("/calendars/x", json={"type": "weekly", "exclude": ["FUNDAY"]}, headers=admin)
    assert bad.status_code == 422 and "exclude: 'FUNDAY' is not a day of the week" in bad.text
    api_client.headers.update(alice)
    wf = make_workflow(api_client)
    resp = api_client.post(
        f"/workflows/{wf['id']}/schedule",
        json={
            "name": "office",
            "type": "daily_time_interval",
            "every": "30m",
            "start_time_of_day": "09:00",
            "end_time_of_day": "17:00",
            "timezone": "Europe/Berlin",
            "start_at": "2030-01-04T16:30:00",
            "calendar": "weekdays",
            "labels": {"team": "finance"},
        },
    )
    assert resp.status_code == 201, resp.text
    trig = resp.json()
    assert trig["labels"] == {"team": "finance"} and trig["type"] == "daily_time_interval"
    assert trig["calendar"] == "weekdays"  # the views name the calendar
    assert api_client.get(f"/triggers/{trig['id']}").json()["calendar"] == "weekdays"
    listed = {t["name"]: t["calendar"] for t in api_client.get(f"/workflows/{wf['id']}/triggers").json()}
    assert listed == {"office": "weekdays"}
    # Friday 16:30 and 17:00, then the weekend is skipped by the calendar: Monday 09:00
    assert trig["next_fire_times"][:3] == [
        "2030-01-04T15:30:00+00:00",
        "2030-01-04T16:00:00+00:00",
        "2030-01-07T08:00:00+00:00",
    ]
    assert api_client.get("/calendars/weekdays").json()["triggers"] == ["nightly/office"]
    in_use = api_client.delete("/calendars/weekdays", headers=admin)
    assert in_use.status_code == 409 and "nightly/office" in in_use.text
    missing = api_client.post(f"/workflows/{wf['id']}/schedule", json={"every": "5m", "calendar": "nope"})
    assert missing.status_code == 422 and "calendar: 'nope' not found" in missing.text
    assert api_client.delete(f"/triggers/{trig['id']}").status_code == 204
    assert api_client.delete("/calendars/weekdays", headers=admin).status_code == 204
    assert api_client.get("/calendars/weekdays").status_code == 404


def test_backfill_route(alice: TestClient, settings: Settings, redis_client: redis.Redis) -> None:
    wf = make_workflow(alice)
    trig = alice.post(f"/workflows/{wf['id']}/schedule", json={"name": "m", "cron": "0 * * * * ?"}).json()
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    window = {"from": (end - timedelta(minutes=9)).isoformat(), "to": end.isoformat()}
    dry = alice.post(f"/triggers/{trig['id']}/backfill", json=window | {"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert len(dry.json()["fires"]) == 10 and published(redis_client, settings) == []
    real = alice.post(f"/triggers/{trig['id']}/backfill", json=window)
    assert real.status_code == 200 and real.json()["fires"] == dry.json()["fires"]
    assert [m["scheduled_for"] for m in published(redis_client, settings)] == dry.json()["fires"]
    assert all(m["backfill"] is True for m in published(redis_client, settings))  # marked for history
    bad = alice.post(f"/triggers/{trig['id']}/backfill", json={"from": "2026-01-02T00:00:00", "to": end.isoformat()})
    assert bad.status_code == 422


def test_lists_filter_on_labels(alice: TestClient) -> None:
    fin = make_workflow(alice, "books", labels={"team": "finance"})
    make_workflow(alice, "crawl")
    assert [w["name"] for w in alice.get("/workflows", params={"label": "team=finance"}).json()] == ["books"]
    for name, labels in (("a", {"team": "finance"}), ("b", {"team": "ops"})):
        resp = alice.post(f"/workflows/{fin['id']}/schedule", json={"name": name, "every": "5m", "labels": labels})
        assert resp.status_code == 201, resp.text
    got = alice.get(f"/workflows/{fin['id']}/triggers", params={"label": "team=ops"}).json()
    assert [t["name"] for t in got] == ["b"]
    bad = alice.get("/workflows", params={"label": "team"})
    assert bad.status_code == 422 and "label: 'team' must be KEY=VALUE" in bad.text
