"""``woow history`` and ``woow execution show``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from ..errors import InvalidInput
from ..views import ExecutionView
from .context import AppContext, pass_app
from .output import emit_json, fmt_time, kv, table


def _since(value: str | None) -> datetime | None:
    """ISO 8601 with an offset, or a look-back such as ``-1h``."""
    if value is None:
        return None
    from ..triggers import parse_duration

    text = value.strip()
    if text.startswith("-"):
        try:
            return datetime.now(UTC) - timedelta(seconds=parse_duration(text[1:]))
        except ValueError:
            raise InvalidInput(f"since: '{value}' is not a look-back like -30m, -1h, -2d") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"since: '{value}' is not ISO 8601 (2026-01-01T00:00:00Z) or a look-back like -1h") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"since: '{value}' needs a time zone offset (e.g. Z or +01:00)")
    return parsed


def _jitter_text(ms: int) -> str:
    return f"+{ms / 1000:.3f}s"


def fire_mark(v: ExecutionView) -> str:
    """How the fire came: ``backfill`` and/or its jitter delay (``+1.234s jitter``); blank for plain fires."""
    parts = []
    if v.backfill:
        parts.append("backfill")
    if v.jitter_ms is not None:
        parts.append(f"{_jitter_text(v.jitter_ms)} jitter")
    return ", ".join(parts)


@click.command()
@click.option("--workflow", "workflow_ref", default=None, help="Only this workflow (name or id).")
@click.option("--trigger", "trigger_ref", default=None, help="Only this trigger (id).")
@click.option("--status", default=None, help="queued, running, succeeded, failed, skipped, retrying or timed_out.")
@click.option("--since", default=None, metavar="DATETIME", help="ISO 8601, or a look-back like -1h.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def history(
    app: AppContext,
    workflow_ref: str | None,
    trigger_ref: str | None,
    status: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Execution history, newest first."""
    views = app.service.history(
        workflow=workflow_ref, trigger=trigger_ref, status=status, since=_since(since), limit=limit
    )
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    table(
        None,
        ["id", "workflow", "trigger", "scheduled for", "mark", "started", "ms", "status", "try", "worker", "error"],
        [
            (
                str(v.id)[:8],
                v.workflow,
                str(v.trigger_id)[:8] if v.trigger_id else "manual",
                fmt_time(v.scheduled_for),
                fire_mark(v),
                fmt_time(v.started_at),
                v.duration_ms,
                v.status,
                v.attempt,
                v.worker,
                (v.error or "")[:60],
            )
            for v in views
        ],
    )


@click.group()
def execution() -> None:
    """Inspect one execution."""


@execution.command()
@click.argument("execution_ref", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def show(app: AppContext, execution_ref: str, as_json: bool) -> None:
    """One execution with its per-step results."""
    v = app.service.get_execution(execution_ref)
    if as_json:
        emit_json(v.to_json())
        return
    kv(
        [
            ("id", v.id),
            ("workflow", f"{v.workflow} ({v.workflow_id})"),
            ("trigger", v.trigger_id or "manual run"),
            ("user", v.user_id),
            ("status", v.status),
            ("attempt", v.attempt),
            ("scheduled_for", fmt_time(v.scheduled_for)),
            ("backfill", "yes" if v.backfill else "no"),
            ("jitter", _jitter_text(v.jitter_ms) if v.jitter_ms is not None else None),
            ("enqueued_at", fmt_time(v.enqueued_at)),
            ("started_at", fmt_time(v.started_at)),
            ("finished_at", fmt_time(v.finished_at)),
            ("duration_ms", v.duration_ms),
            ("worker", v.worker),
            ("celery_task_id", v.celery_task_id),
            ("error", v.error),
        ]
    )
    if v.steps:
        table(
            "steps",
            ["step", "type", "status", "ms", "output / error"],
            [
                (
                    s.get("name"),
                    s.get("type"),
                    s.get("status"),
                    s.get("duration_ms"),
                    s.get("error") or json.dumps(s.get("output"))[:200],
                )
                for s in v.steps
            ],
        )
