"""The chaos workflows' only step: a run journal, independent of Redis and PostgreSQL.

``journal(ctx, path, seconds)`` appends a ``start`` line, sleeps, appends an ``end`` line (one
``O_APPEND`` write each, so lines of concurrent processes never interleave).  The accounting
reads it to count how often each execution really ran and whether runs of one workflow overlapped
-- evidence that survives a killed worker, a lost Redis or a stopped PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any


def _write(path: str, record: dict[str, Any]) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def journal(ctx: Any, path: str, seconds: float = 0.0) -> dict[str, Any]:
    run = uuid.uuid4().hex[:12]
    base = {
        "r": run,
        "e": str(ctx.execution_id),
        "w": str(ctx.workflow_id),
        "s": ctx.scheduled_for.isoformat() if ctx.scheduled_for else None,
        "a": ctx.attempt,
        "p": os.getpid(),
    }
    _write(path, {**base, "k": "start", "t": time.time()})
    if seconds > 0:
        time.sleep(seconds)
    _write(path, {**base, "k": "end", "t": time.time()})
    return {"run": run}


def flaky(ctx: Any, path: str, fail_attempts: int = 1, hold: float = 0.0) -> dict[str, Any]:
    """``journal`` whose first ``fail_attempts`` attempts fail: ``start``, ``hold`` seconds, then a
    ``fail`` line and an exception (the test can act while the attempt is about to fail)."""
    if ctx.attempt > fail_attempts:
        return journal(ctx, path)
    run = uuid.uuid4().hex[:12]
    base = {"r": run, "e": str(ctx.execution_id), "w": str(ctx.workflow_id), "a": ctx.attempt, "p": os.getpid()}
    _write(path, {**base, "k": "start", "t": time.time()})
    if hold > 0:
        time.sleep(hold)
    _write(path, {**base, "k": "fail", "t": time.time()})
    raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
