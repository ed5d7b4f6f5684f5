"""A retry whose publish fails, end to end: the reaper sends it again and the fire ends once.

A real worker runs a workflow whose only step fails on its first attempt (``max_retries`` 1).  The
worker publishes through a loopback proxy (``CELERY_BROKER_WRITE_URL``; it consumes directly, so
its own message is acked or rejected normally), and the test cuts the proxy while the first
attempt is about to fail.  The worker records the row ``retrying`` and then cannot publish the
retry: Celery turns that into ``Reject(requeue=False)`` and the message is gone.  Nothing but the
row remembers the fire; beat's reaper must publish it again once the row is overdue by
``visibility_timeout`` + ``fire_journal_grace``, and the second attempt must run exactly once.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.chaos.harness import JOURNAL, ChaosEnv, second, utcnow
from tests.chaos.proxy import DelayProxy
from tests.support.procs import wait_for
from woow_scheduler.db import Execution
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.scheduler.sync import full_sync
from woow_scheduler.service import Service

pytestmark = pytest.mark.slow

FLAKY = "tests.chaos.callables:flaky"
GRACE = 1.0
HOLD = 1.5  # seconds the failing attempt waits before it fails: the test cuts the link meanwhile


def _journal(env: ChaosEnv) -> list[dict[str, Any]]:
    if not env.journal.exists():
        return []
    return [json.loads(line) for line in env.journal.read_text().splitlines() if line.strip()]


def _rows(env: ChaosEnv, trigger_id: Any) -> list[Any]:
    with env.db.session() as s:
        return list(s.execute(select(Execution).where(Execution.trigger_id == trigger_id)).scalars())


@pytest.mark.timeout(120)
def test_a_retry_whose_publish_failed_is_sent_again_by_the_reaper(chaos_env: ChaosEnv) -> None:
    env = chaos_env
    # visibility timeout 5 s (not 10): the reaper waits for it, and nothing here runs longer than 2 s
    env.settings = settings = env.make_settings(
        visibility_timeout=5, fire_journal_grace=GRACE, python_callables=[JOURNAL, FLAKY]
    )
    svc = Service(env.db, settings)
    wf = svc.create_workflow(
        {
            "name": "lost-retry",
            "steps": [
                {
                    "name": "flaky",
                    "type": "python",
                    "config": {
                        "callable": FLAKY,
                        "pass_context": True,
                        "kwargs": {"path": str(env.journal), "fail_attempts": 1, "hold": HOLD},
                    },
                }
            ],
            "max_retries": 1,
            "retry_delay": 1,
        }
    )
    run_at = second(utcnow()) + timedelta(seconds=4)
    trigger = svc.add_trigger(str(wf.id), {"type": "once", "run_at": run_at.isoformat()}, name="once")
    env.trigger_ids.append(trigger.id)
    full_sync(settings, db=env.db)

    with DelayProxy(env.redis_server.port, delay=0.0) as proxy:
        worker = env.worker("w1", env={"CELERY_BROKER_WRITE_URL": proxy.url})
        beat = env.beat("a")
        wait_for(lambda: any(r["a"] == 1 for r in _journal(env)), 30, what="the first attempt")
        proxy.cut()  # the attempt fails within HOLD s, and its retry cannot be published
        cut_at = utcnow()
        wait_for(lambda: "reject requeue=False" in worker.log(), 20, what="the retry's publish to fail")
        (row,) = _rows(env, trigger.id)
        assert row.status == ExecutionStatus.RETRYING and row.attempt == 1, (row.status, row.error)
        proxy.restore()
        # nothing is in the broker for this fire now: only the reaper can bring it back
        timeout = settings.visibility_timeout + GRACE + 30
        done = wait_for(
            lambda: [r for r in _rows(env, trigger.id) if ExecutionStatus(r.status).is_final],
            timeout,
            what="the fire to end final",
        )
        time.sleep(0.5)  # a journal write racing the status change lands
        beat.stop()

    (row,) = done
    assert len(_rows(env, trigger.id)) == 1
    assert row.status == ExecutionStatus.SUCCEEDED and row.attempt == 2, (row.status, row.attempt, row.error)
    runs = _journal(env)
    assert [(r["a"], r["k"]) for r in runs] == [(1, "start"), (1, "fail"), (2, "start"), (2, "end")], runs
    assert {r["e"] for r in runs} == {str(row.id)}
    # two deliveries: beat's fire and the reaper's re-send (the retry's message never existed)
    assert worker.log().count("] received") == 2, worker.log()
    beat_log = beat.log()
    assert f"re-sent a retrying execution whose message never came execution_id={row.id}" in beat_log, beat_log
    assert beat_log.count("re-sent a retrying execution") == 1
    # the re-send came after the row was overdue, not from a message that survived the cut
    assert row.started_at is not None and row.started_at - cut_at > timedelta(seconds=settings.visibility_timeout)
