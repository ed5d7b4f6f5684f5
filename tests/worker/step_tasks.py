"""A plain Celery task for celery_task steps to send in tests (loaded into a worker with ``-I``)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="tests.accumulate")
def accumulate(*args: Any, **kwargs: Any) -> list[Any]:
    return list(args)
