"""``woow workflow`` and ``woow strategies``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidWorkflow
from ..labels import parse_label_args
from ..views import WorkflowView
from .context import AppContext, pass_app
from .output import emit_json, kv, table

JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group()
def workflow() -> None:
    """Create, apply, list, show, run and delete workflows."""


def _parse_steps(raw_steps: tuple[str, ...]) -> list[Any]:
    steps: list[Any] = []
    for i, raw in enumerate(raw_steps):
        try:
            step = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidWorkflow(f"steps[{i}]: --step is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(step, list):
            steps.extend(step)
        else:
            steps.append(step)
    return steps


@workflow.command("create")
@click.argument("name")
@click.option("--description", default="", help="Free text.")
@click.option(
    "--step",
    "steps",
    multiple=True,
    metavar="JSON",
    help='A step as JSON, repeatable: \'{"name": "hello", "type": "log", "config": {"message": "hi"}}\'.',
)
@click.option(
    "--concurrency",
    type=click.Choice(["forbid", "queue", "allow"]),
    default="forbid",
    show_default=True,
    help="What a fire does while another run of this workflow holds its lock.",
)
@click.option("--max-retries", type=int, default=0, show_default=True, help="Retries of a failed run.")
@click.option("--retry-delay", type=float, default=15.0, show_default=True, help="Seconds before a retry.")
@click.option("--retry-backoff/--no-retry-backoff", default=False, help="Double the delay on each retry.")
@click.option("--timeout", type=float, default=None, help="Seconds a run may take before it is timed out.")
@click.option("--user", default=None, help="Owner user id.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label (repeatable): team=finance.")
@JSON_OPT
@pass_app
def create(
    app: AppContext,
    name: str,
    description: str,
    steps: tuple[str, ...],
    concurrency: str,
    max_retries: int,
    retry_delay: float,
    retry_backoff: bool,
    timeout: float | None,
    user: str | None,
    labels: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create workflow NAME from its steps."""
    view = app.service.create_workflow(
        {
            "name": name,
            "description": description,
            "steps": _parse_steps(steps),
            "concurrency": concurrency,
            "max_retries": max_retries,
            "retry_delay": retry_delay,
            "retry_backoff": retry_backoff,
            "timeout": timeout,
            "owner_user_id": user,
            "labels": parse_label_args(labels),
        }
    )
    if as_json:
        emit_json(workflow_json(view))
    else:
        click.echo(f"created workflow {view.name} ({view.id}) with {len(view.steps)} step(s)")


def workflow_json(view: WorkflowView) -> dict[str, Any]:
    return view.to_json()


@workflow.command("list")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only workflows with this label.")
@JSON_OPT
@pass_app
def list_(app: AppContext, labels: tuple[str, ...], as_json: bool) -> None:
    """List workflows."""
    views = app.service.list_workflows(labels=parse_label_args(labels))
    if as_json:
        emit_json([workflow_json(v) for v in views])
        return
    table(
        None,
        ["id", "name", "steps", "concurrency", "retries", "timeout", "owner"],
        [
            (
                str(v.id)[:8],
                v.name,
                ", ".join(s["name"] for s in v.steps),
                v.concurrency,
                v.max_retries,
                v.timeout or "-",
                v.owner_user_id or "-",
            )
            for v in views
        ],
    )


@workflow.command()
@click.argument("workflow_ref", metavar="NAME_OR_ID")
@JSON_OPT
@pass_app
def show(app: AppContext, workflow_ref: str, as_json: bool) -> None:
    """Show one workflow with its steps and triggers."""
    view = app.service.get_workflow(workflow_ref)
    triggers = app.service.list_triggers(workflow=str(view.id))
    if as_json:
        data = workflow_json(view)
        data["triggers"] = [t.to_json() for t in triggers]
        emit_json(data)
        return
    kv(
        [
            ("id", view.id),
            ("name", view.name),
            ("description", view.description),
            ("concurrency", view.concurrency),
            ("max_retries", view.max_retries),
            ("retry_delay", f"{view.retry_delay}s" + (" (exponential backoff)" if view.retry_backoff else "")),
            ("timeout", f"{view.timeout}s" if view.timeout else None),
            ("owner", view.owner_user_id),
            ("created", view.created_at.isoformat(timespec="seconds")),
        ]
    )
    table(
        "steps",
        ["#", "name", "type", "config"],
        [(i + 1, s["name"], s["type"], json.dumps(s.get("config", {}))) for i, s in enumerate(view.steps)],
    )
    table(
        "triggers",
        ["id", "name", "type", "state", "next fire (UTC)"],
        [
            (
                str(t.id)[:8],
                t.name,
                t.type,
                t.state,
                t.next_fire_time.isoformat(timespec="seconds") if t.next_fire_time else "-",
            )
            for t in triggers
        ],
    )


@workflow.command()
@click.argument("workflow_ref", metavar="NAME_OR_ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@JSON_OPT
@pass_app
def delete(app: AppContext, workflow_ref: str, yes: bool, as_json: bool) -> None:
    """Delete a workflow, its triggers and its history."""
    view = app.service.get_workflow(workflow_ref)
    if not yes:
        click.confirm(f"Delete workflow '{view.name}' with its triggers and history?", abort=True)
    app.service.delete_workflow(str(view.id))
    if as_json:
        emit_json(workflow_json(view))
    else:
        click.echo(f"deleted workflow {view.name} ({view.id})")


@workflow.command()
@click.argument("workflow_ref", metavar="NAME_OR_ID")
@click.option("--user", default=None, help="User id recorded with the run.")
@click.option("--wait", is_flag=True, help="Wait until the run has finished and exit 1 unless it succeeded.")
@click.option("--wait-timeout", type=float, default=600.0, show_default=True, help="Seconds to wait with --wait.")
@JSON_OPT
@pass_app
def run(app: AppContext, workflow_ref: str, user: str | None, wait: bool, wait_timeout: float, as_json: bool) -> None:
    """Run a workflow now, outside its schedule (a worker must be running)."""
    from ..worker import get_app

    view, execution_id = app.service.run_workflow(workflow_ref, app=get_app(app.settings), user_id=user)
    if not wait:
        if as_json:
            emit_json({"execution_id": str(execution_id), "workflow": view.name, "status": "queued"})
        else:
            click.echo(f"queued execution {execution_id} of {view.name}")
        return
    deadline = time.monotonic() + wait_timeout
    ex = app.service.get_execution(str(execution_id))
    while ex.status not in {"succeeded", "failed", "skipped", "timed_out"}:
        if time.monotonic() > deadline:
            raise click.ClickException(f"execution {execution_id} still {ex.status} after {wait_timeout:.0f}s")
        time.sleep(0.5)
        ex = app.service.get_execution(str(execution_id))
    if as_json:
        emit_json(ex.to_json())
    else:
        click.echo(f"execution {ex.id} {ex.status}" + (f": {ex.error}" if ex.error else ""))
    if ex.status != "succeeded":
        raise SystemExit(1)


@workflow.command()
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="YAML or JSON file with one workflow (or a list under 'workflows'), and named 'calendars'.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change and change nothing.")
@click.option("--prune", is_flag=True, help="Also delete triggers that the file no longer lists.")
@click.option("--user", default=None, help="Owner / creator user id for new objects.")
@JSON_OPT
@pass_app
def apply(app: AppContext, path: Path, dry_run: bool, prune: bool, user: str | None, as_json: bool) -> None:
    """Create or update workflows and their triggers from a file, by name (idempotent).

    The file may also define named calendars ('calendars: {NAME: DEFINITION}') that its triggers
    name ('calendar: NAME'); a changed calendar re-plans every trigger using it.
    """
    from ..service.apply import load_file

    calendars, docs = load_file(path)
    plan = app.service.apply(docs, calendars=calendars, dry_run=dry_run, prune=prune, user_id=user)
    if as_json:
        emit_json({"dry_run": dry_run, "changes": plan})
        return
    if not plan:
        click.echo("no changes")
        return
    for change in plan:
        detail = f" ({', '.join(change['fields'])})" if change.get("fields") else ""
        click.echo(f"{'would ' if dry_run else ''}{change['action']} {change['kind']} {change['name']}{detail}")


@click.command()
@JSON_OPT
@pass_app
def strategies(app: AppContext, as_json: bool) -> None:
    """List the installed task strategies (built-ins and plugins)."""
    from ..engine.registry import BUILTINS, available_strategies

    builtin_names = {c.name for c in BUILTINS}
    rows: list[dict[str, Any]] = []
    for name, cls in available_strategies().items():
        try:
            cls(app.settings).check_allowed()
            enabled = True
        except Exception:
            enabled = False
        rows.append(
            {
                "name": name,
                "source": "built-in" if name in builtin_names else cls.__module__,
                "enabled": enabled,
                "description": cls.description,
                "config": sorted(cls.Config.model_fields),
            }
        )
    if as_json:
        emit_json(rows)
        return
    table(
        None,
        ["name", "source", "enabled", "config keys", "description"],
        [
            (r["name"], r["source"], "yes" if r["enabled"] else "no", ", ".join(r["config"]), r["description"])
            for r in rows
        ],
    )
