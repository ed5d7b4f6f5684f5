"""The worker's metric hooks, fed what Celery and the worker's log really hand them (no server)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from woow_scheduler.metrics import WorkerMetrics, _TakeoverCounter
from woow_scheduler.worker.logfmt import RunLog


def _value(metric: object, **labels: str) -> float:
    target = metric.labels(**labels) if labels else metric  # type: ignore[attr-defined]
    return float(target._value.get())


def test_takeovers_are_counted_from_the_workers_own_log_record() -> None:
    m = WorkerMetrics()
    logger = logging.getLogger("woow.worker.test-takeover")
    handler = _TakeoverCounter(m)
    logger.addHandler(handler)
    try:
        rlog = RunLog(workflow="w", logger=logger)
        rlog.warning("took over a stale execution (its worker died, its lock expired)", attempt=2)
        rlog.warning("attempt failed; retrying", retry_in=1)
    finally:
        logger.removeHandler(handler)
    assert _value(m.takeovers) == 1.0


def test_outcomes_durations_retries_and_lost_locks() -> None:
    m = WorkerMetrics()
    m.task_started("a")
    m.task_done("a", {"outcome": "succeeded", "execution_id": "x", "attempt": 1})
    m.task_started("b")
    m.task_done("b", {"outcome": "duplicate", "execution_id": "x", "reason": "already succeeded"})
    m.task_started("c")
    m.task_done("c", {"outcome": "lost", "execution_id": "y"})
    m.task_started("d")
    m.task_retried("d", SimpleNamespace(sig=SimpleNamespace(options={"reason": "lock"})))
    m.task_retried("e", SimpleNamespace(sig=None))
    assert _value(m.executions, outcome="succeeded") == 1.0
    assert _value(m.executions, outcome="duplicate") == 1.0
    assert _value(m.lost_locks) == 1.0
    assert _value(m.retries, reason="lock") == 1.0 and _value(m.retries, reason="other") == 1.0
    assert m.run_duration._sum.get() >= 0.0 and sum(b.get() for b in m.run_duration._buckets) == 2  # a and c
