"""Callables allow-listed for the python strategy in tests."""

from __future__ import annotations

from typing import Any


def add(a: float, b: float) -> dict[str, Any]:
    return {"sum": a + b}


def fail_with(message: str) -> None:
    raise RuntimeError(message)


def with_context(ctx: Any, greeting: str) -> str:
    return f"{greeting} {ctx.workflow_name} attempt {ctx.attempt}"
