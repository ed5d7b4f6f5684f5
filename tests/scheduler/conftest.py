"""Fixtures of the scheduling-core tests: triggers in PostgreSQL, a reconciler, a beat app."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from tests.support import factories
from woow_scheduler.db import Database, Trigger, Workflow, trigger_state
from woow_scheduler.enums import TriggerState
from woow_scheduler.keys import Keys
from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings
from woow_scheduler.triggers import parse_trigger_spec, spec_from_stored

MakeTrigger = Callable[..., Trigger]


@pytest.fixture
def workflow(db: Database) -> Workflow:
    return factories.make_workflow(db, owner_user_id="owner-1")


@pytest.fixture
def make_trigger(db: Database, workflow: Workflow) -> MakeTrigger:
    """``tests.support.factories.make_trigger`` on this test's database and workflow."""

    def make(
        spec: dict[str, Any],
        *,
        state: TriggerState = TriggerState.NORMAL,
        previous_fire_time: datetime | None = None,
        updated_at: datetime | None = None,
        created_by: str | None = "user-1",
        workflow_id: uuid.UUID | None = None,
        name: str | None = None,
    ) -> Trigger:
        extra = {"name": name} if name is not None else {}
        return factories.make_trigger(
            db,
            workflow_id or workflow.id,
            spec,
            updated_at=updated_at,
            state=state,
            previous_fire_time=previous_fire_time,
            created_by=created_by,
            **extra,
        )

    return make


@pytest.fixture
def reconciler(settings: Settings, db: Database, redis_client: redis.Redis) -> Iterator[Reconciler]:
    yield Reconciler(settings, db, redis_client)


def update_trigger(
    db: Database, trigger_id: uuid.UUID, *, spec: dict[str, Any] | None = None, state: TriggerState | None = None
) -> None:
    """A change as the service makes it, through the one writer of trigger state: a new spec
    (``trigger_state.respecify``) and/or a pause or resume (``trigger_state.set_state``)."""
    now = datetime.now(UTC)
    with db.session() as s:
        t = s.get(Trigger, trigger_id)
        assert t is not None
        if spec is not None:
            trigger_state.respecify(t, parse_trigger_spec(spec, now=now, allow_past=True), now)
        if state is not None:
            trigger_state.set_state(t, state, spec_from_stored(t.spec), now)


def published(client: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """Every execute_workflow message waiting in the broker queue, oldest first (kwargs + shadow)."""
    out = []
    for raw in reversed(client.lrange(Keys(settings.key_prefix).broker_queue(settings.queue), 0, -1)):
        msg = json.loads(raw)
        kwargs = json.loads(base64.b64decode(msg["body"]))[1]
        out.append({**kwargs, "shadow": msg["headers"].get("shadow"), "task": msg["headers"]["task"]})
    return out


class QuietScheduler(WoowScheduler):
    """The beat scheduler without its PostgreSQL thread: tests drive bookkeeping themselves."""

    run_maintenance = False


@pytest.fixture
def make_scheduler(settings: Settings) -> Iterator[Callable[..., WoowScheduler]]:
    made: list[WoowScheduler] = []

    def make(cls: type[WoowScheduler] = QuietScheduler, **overrides: Any) -> WoowScheduler:
        s = settings.model_copy(update=overrides) if overrides else settings
        sch = cls(create_app(s))
        made.append(sch)
        return sch

    yield make
    for sch in made:
        sch.close()
