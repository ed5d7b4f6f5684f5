"""Callables allow-listed for the python strategy in tests."""

from __future__ import annotations

from typing import Any


def add(a: float, b: float) -> dict[str, Any]:
    return {"sum": a + b}


def fail_with(message: str) -> None:
    raise RuntimeError(message)


def with_context(ctx: Any, greeting: str) -> str:
    return f"{greeting} {ctx.workflow_name} attempt {ctx.attempt}"


def hold_gil(seconds: int) -> dict[str, float]:
    """Sleep in C *without* releasing the GIL (``ctypes.PyDLL`` keeps it held during the call), as a
    C call such as a catastrophic regular expression does: no other thread of the process runs
    meanwhile.  Returns the wall-clock bounds of the hold."""
    import ctypes
    import time

    started = time.time()
    ctypes.PyDLL(None).sleep(int(seconds))
    return {"started": started, "ended": time.time()}


def catastrophic_regex(length: int) -> bool:
    """A regular expression that backtracks exponentially (2**length steps) in C, holding the GIL."""
    import re

    return re.match(r"(a+)+$", "a" * length + "b") is not None


def ignore_term_and_sleep(seconds: float) -> None:
    """Ignore SIGTERM, then sleep: a step that outlives billiard's polite SIGTERM at Celery's hard
    time limit (it dies only at the SIGKILL 0.1 s later)."""
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)
