"""Fixtures and helpers of the worker tests (``make_workflow``/``make_trigger`` come from tests.support)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select

from tests.support.factories import make_trigger, make_workflow  # noqa: F401  (the worker tests import them from here)
from tests.support.procs import wait_for
from tests.support.stores import settings_for
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Trigger, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.messaging.publish import enqueue_fire
from woow_scheduler.settings import Settings
from woow_scheduler.worker import get_app


def send_fire(
    app: Celery, settings: Settings, wf: Workflow, tr: Trigger, when: datetime, user_id: str | None = None
) -> None:
    """Publish the fire of ``tr`` at ``when`` as beat would."""
    enqueue_fire(
        app, settings, workflow_id=wf.id, workflow_name=wf.name, trigger_id=tr.id, user_id=user_id, scheduled_for=when
    )


def executions(db: Database, workflow_id: uuid.UUID) -> list[Execution]:
    with db.session() as s:
        return list(
            s.scalars(
                select(Execution).where(Execution.workflow_id == workflow_id).order_by(Execution.created_at)
            ).all()
        )


def wait_final(db: Database, workflow_id: uuid.UUID, count: int, timeout: float = 30.0) -> list[Execution]:
    def done() -> list[Execution] | None:
        rows = executions(db, workflow_id)
        if len(rows) >= count and all(ExecutionStatus(r.status).is_final for r in rows):
            return rows
        return None

    result: list[Execution] = wait_for(done, timeout, what=f"{count} final executions")
    return result


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def wsettings(pg_url: str, redis_url: str, key_prefix: str) -> Settings:
    """Worker-test settings: short lock TTL and visibility timeout so crash tests stay fast."""
    return settings_for(
        pg_url,
        redis_url,
        key_prefix,
        lock_ttl=3.0,
        visibility_timeout=8,
        max_queue_wait=60.0,
        db_retry_max=30,
        python_callables=[
            "tests.worker.callables:add",
            "tests.worker.callables:fail_with",
            "tests.worker.callables:hold_gil",
        ],
    )


@pytest.fixture
def app(wsettings: Settings) -> Iterator[Celery]:
    application = get_app(wsettings)
    yield application
    application.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"
