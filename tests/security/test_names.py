"""Names belong to their owner: bob can neither learn nor squat alice's names, nor capture her ids."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.security.conftest import LOG, counts, one_line_problem
from woow_scheduler.db import Database


def test_names_are_unique_per_owner(client: TestClient, alice: dict[str, str], bob: dict[str, str],
                                    admin: dict[str, str], db: Database) -> None:
    hers = client.post("/workflows", json={"name": "alice-wf", "steps": LOG}, headers=alice)
    assert hers.status_code == 201
    # bob learns nothing: the same name is simply his own workflow
    his = client.post("/workflows", json={"name": "alice-wf", "steps": LOG}, headers=bob)
    assert his.status_code == 201, his.text
    assert his.json()["id"] != hers.json()["id"]
    assert client.get("/workflows/alice-wf", headers=bob).json()["id"] == his.json()["id"]
    assert client.get("/workflows/alice-wf", headers=alice).json()["id"] == hers.json()["id"]
    # within one owner a name is still taken
    before = counts(db)
    one_line_problem(client.post("/workflows", json={"name": "alice-wf", "steps": LOG}, headers=bob), 409, "name")
    renamed = client.post("/workflows", json={"name": "other", "steps": LOG}, headers=bob).json()
    one_line_problem(client.put(f"/workflows/{renamed['id']}", json={"name": "alice-wf", "steps": LOG},
                                headers=bob), 409, "name")
    assert counts(db)["workflows"] == before["workflows"] + 1
    # an admin must use the id when two users chose the name
    one_line_problem(client.get("/workflows/alice-wf", headers=admin), 422, "id")
    assert client.get(f"/workflows/{hers.json()['id']}", headers=admin).status_code == 200


def test_names_are_validated_whole_and_cannot_look_like_ids(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], db: Database
) -> None:
    hers = client.post("/workflows", json={"name": "hers", "steps": LOG}, headers=alice).json()
    before = counts(db)
    for name in ("name\n", "name\r", hers["id"][:8], hers["id"][:13], "deadbeef", "0123456789"):
        resp = client.post("/workflows", json={"name": name, "steps": LOG}, headers=bob)
        one_line_problem(resp, 422, "name")
    one_line_problem(client.post(f"/workflows/{hers['id']}/schedule", json={"every": "1h", "name": "t\n"},
                                 headers=alice), 422, "name")
    assert counts(db) == before
