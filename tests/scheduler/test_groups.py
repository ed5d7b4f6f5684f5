"""Groups: labels on workflows and triggers; pausing a label pauses exactly those triggers, in one
transaction, mirrored to RedBeat at once."""

from __future__ import annotations

import pytest
import redis

from woow_scheduler.db import Database
from woow_scheduler.enums import TriggerState
from woow_scheduler.errors import InvalidInput, InvalidWorkflow
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.sync import RedBeatMirror
from woow_scheduler.service import Service
from woow_scheduler.settings import Settings

LOG_STEP = {"name": "hello", "type": "log", "config": {"message": "hi"}}
CRON = {"type": "cron", "expression": "0 0 12 * * ?"}


@pytest.fixture
def svc(settings: Settings, db: Database, redis_client: redis.Redis) -> Service:
    service = Service(db, settings, mirror=RedBeatMirror(settings, db, redis_client), redis_client=redis_client)
    service.create_workflow({"name": "ledger", "steps": [LOG_STEP], "labels": {"team": "finance"}})
    service.create_workflow({"name": "crawl", "steps": [LOG_STEP]})
    return service


def test_pausing_a_label_pauses_exactly_those_triggers(
    svc: Service, settings: Settings, redis_client: redis.Redis
) -> None:
    fin = [svc.add_trigger("ledger", CRON, name=n, labels={"team": "finance"}) for n in ("a", "b")]
    other = [
        svc.add_trigger("ledger", CRON, name="c", labels={"team": "ops"}),
        svc.add_trigger("crawl", CRON, name="d"),
    ]
    keys = Keys(settings.key_prefix)

    def scheduled(trigger_id: object) -> bool:
        return redis_client.zscore(keys.redbeat_schedule, keys.redbeat_entry(trigger_id)) is not None

    assert all(scheduled(t.id) for t in fin + other)
    paused = svc.set_triggers_state(TriggerState.PAUSED, labels={"team": "finance"})
    assert sorted(v.name for v in paused) == ["a", "b"]
    states = {v.name: v.state for v in svc.list_triggers()}
    assert states == {"a": "PAUSED", "b": "PAUSED", "c": "NORMAL", "d": "NORMAL"}
    assert [scheduled(t.id) for t in fin + other] == [False, False, True, True]
    assert [v.name for v in svc.list_triggers(labels={"team": "finance"})] == ["a", "b"]
    assert [w.name for w in svc.list_workflows(labels={"team": "finance"})] == ["ledger"]
    assert svc.set_triggers_state(TriggerState.PAUSED, labels={"team": "finance"}) == []  # already paused
    resumed = svc.set_triggers_state(TriggerState.NORMAL, workflow="ledger")
    assert sorted(v.name for v in resumed) == ["a", "b"]
    assert all(scheduled(t.id) for t in fin + other)
    assert len(svc.set_triggers_state(TriggerState.PAUSED, all_triggers=True)) == 4
    assert not any(scheduled(t.id) for t in fin + other)


def test_label_input_errors(svc: Service) -> None:
    with pytest.raises(InvalidInput, match=r"^labels: key 'bad key' must be"):
        svc.add_trigger("ledger", CRON, labels={"bad key": "x"})
    with pytest.raises(InvalidWorkflow, match=r"labels"):
        svc.create_workflow({"name": "w2", "steps": [LOG_STEP], "labels": {"k": 5}})
    with pytest.raises(InvalidInput, match=r"^selector: give exactly one of labels, workflow or all"):
        svc.set_triggers_state(TriggerState.PAUSED, labels={"a": "b"}, all_triggers=True)
