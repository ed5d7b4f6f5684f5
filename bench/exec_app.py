"""Celery app of the execution benchmark: woow's app plus a bare no-op task for the baseline."""

from __future__ import annotations

from woow_scheduler.worker import get_app

app = get_app()


@app.task(name="bench.noop", ignore_result=True, acks_late=True)  # type: ignore[untyped-decorator]
def noop() -> None:
    return None
