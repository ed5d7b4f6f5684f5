"""``woow sync`` and ``woow status``: keeping Redis in line with PostgreSQL, and health."""

from __future__ import annotations

import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import click

from ..errors import StoreUnavailable, WoowError
from .context import AppContext, pass_app
from .output import emit_json, table

if TYPE_CHECKING:
    import redis

    from ..db.session import Database
    from ..service import Service
    from ..settings import Settings

HEALTHY, DEGRADED, DOWN = 0, 1, 2
COMPONENTS = ("database", "redis", "broker", "beat", "workers")
CHECKS = (*COMPONENTS, "api")  # the API only when asked for (--check api)


@click.command()
@click.option("--full", is_flag=True, help="Every trigger: add missing entries, fix drifted ones, remove stale ones.")
@click.option(
    "--since",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Without --full: reconcile triggers changed within this look-back.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def sync(app: AppContext, full: bool, since: str, as_json: bool) -> None:
    """Mirror PostgreSQL's triggers into RedBeat now (beat also does this by itself).

    After Redis was lost, `woow sync --full` rebuilds every entry with its last fire time.
    """
    from ..scheduler.sync import Reconciler, full_sync
    from ..triggers import parse_duration

    s = app.settings
    app.db.ping()
    if full:
        progress = None
        bar: Any = None
        if sys.stderr.isatty() and not as_json:
            from rich.progress import Progress

            bar = Progress(transient=True)
            task = bar.add_task("syncing triggers", total=None)
            bar.start()

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

        try:
            report = full_sync(s, progress=progress, db=app.db, client=app.redis)
        finally:
            if bar is not None:
                bar.stop()
    else:
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
        report = Reconciler(s, app.db, app.redis).incremental(datetime.now(UTC) - timedelta(seconds=seconds))
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(report.summary())
    if report.errors:
        raise SystemExit(1)


def _check(name: str, fn: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = fn()
        return {"name": name, "ok": True, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except (WoowError, Exception) as exc:  # a health check reports, it does not crash
        msg = " ".join(str(exc).split())[:300] or type(exc).__name__
        return {"name": name, "ok": False, "detail": msg, "ms": round((time.perf_counter() - started) * 1000, 1)}


class StatusSources(Protocol):
    """What the status checks read: the CLI's ``AppContext`` and the API's ``ApiState`` both fit."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def redis(self) -> redis.Redis: ...
    @property
    def service(self) -> Service: ...


def _check_with_problems(name: str, fn: Any) -> dict[str, Any]:
    """A check that can answer and still find problems (no active beat, no worker): it is not ok,
    its detail is what the problems say, and what it read stays under ``info``."""
    found: dict[str, Any] = {"problems": []}
    c = _check(name, lambda: fn(found))
    if c["ok"] and found["problems"]:
        c.update(ok=False, info=c["detail"], detail="; ".join(found["problems"]))
    return c


def collect_status(
    app: StatusSources, components: tuple[str, ...] = COMPONENTS, *, local: bool = False, api_url: str = ""
) -> dict[str, Any]:
    """Everything ``woow status`` reports, with an overall ``state`` and ``exit_code``.

    ``local``: the beat and worker checks are about this host's processes (a container's health
    check): a beat here with a fresh heartbeat, active or standby; a worker named ``*@<host>``.
    """
    from ..db import migrate

    s = app.settings
    out: dict[str, Any] = {"checks": {}, "problems": []}
    checks = out["checks"]

    def database() -> Any:
        app.db.ping()
        cur, head = migrate.current_revision(app.db), migrate.head_revision(app.db)
        if cur != head:
            out["problems"].append(f"database schema at {cur or 'empty'}, newest is {head}: run 'woow db upgrade'")
        return {"revision": cur, "head": head}

    def redis_() -> Any:
        app.redis.ping()
        return {"url": _safe_url(s.redis_url)}

    def broker() -> Any:
        from ..worker import get_app

        with get_app(s).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            # declared as Celery declares it (durable, not auto-delete): RabbitMQ refuses a declare whose
            # flags differ from the existing queue's (PRECONDITION_FAILED), and py-amqp defaults to auto_delete
            depth = conn.default_channel.queue_declare(
                queue=s.queue, passive=False, durable=True, auto_delete=False
            ).message_count
        return {"url": _safe_url(s.effective_broker_url), "queue": s.queue, "queue_depth": depth}

    if "database" in components:
        checks["database"] = _check("database", database)
    if "redis" in components or "beat" in components:
        checks["redis"] = _check("redis", redis_)
    if "broker" in components or "workers" in components:
        checks["broker"] = _check("broker", broker)

    down = [n for n, c in checks.items() if not c["ok"]]
    if "api" in components:
        checks["api"] = _check("api", lambda: _api(api_url))
        down += [] if checks["api"]["ok"] else ["api"]
    if "beat" in components and checks["redis"]["ok"]:
        checks["beat"] = _check_with_problems("beat", lambda found: _beat(app, found, local))
    if "workers" in components and checks["broker"]["ok"]:
        checks["workers"] = _check_with_problems("workers", lambda found: _workers(app, found, local))
    if "database" in components and checks["database"]["ok"]:
        try:
            out["counts"] = app.service.counts()
        except StoreUnavailable as exc:
            out["problems"].append(str(exc))
    for name, c in checks.items():
        if not c["ok"]:
            out["problems"].append(f"{name}: {c['detail']}")
    if down:
        out["state"], out["exit_code"] = "down", DOWN
    elif out["problems"] or any(not c["ok"] for c in checks.values()):
        out["state"], out["exit_code"] = "degraded", DEGRADED
    else:
        out["state"], out["exit_code"] = "healthy", HEALTHY
    out["checked_at"] = datetime.now(UTC).isoformat()
    return out


def _aware(text: str) -> datetime:
    """A stored time as aware UTC (SQLite hands back naive ones)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _beat(app: StatusSources, out: dict[str, Any], local: bool = False) -> dict[str, Any]:
    from ..scheduler.beat import beat_status

    s = app.settings
    info = beat_status(s, app.redis, app.db)
    stale_after = max(3 * s.beat_max_loop_interval, 10.0)
    fresh = datetime.now(UTC) - timedelta(seconds=3 * s.heartbeat_interval)
    instances = info.get("instances", [])
    info["standbys"] = [i for i in instances if not i["is_leader"] and _aware(i["last_heartbeat"]) >= fresh]
    if local:
        host = socket.gethostname()
        here = [i for i in instances if i["host"] == host and _aware(i["last_heartbeat"]) >= fresh]
        info["local"] = here
        if not here:
            out["problems"].append(f"no beat on this host ({host}) has a heartbeat in the last "
                                   f"{3 * s.heartbeat_interval:.0f}s")
        return info
    if not info.get("lock_held") or not info.get("active"):
        out["problems"].append("no active beat holds the lock (start 'woow beat')")
    elif info.get("last_tick_age_s") is not None and info["last_tick_age_s"] > stale_after:
        out["problems"].append(f"last tick {info['last_tick_age_s']:.0f}s ago (more than {stale_after:.0f}s)")
    return info


def _workers(app: StatusSources, out: dict[str, Any], local: bool = False) -> dict[str, Any]:
    from ..worker import get_app

    replies = get_app(app.settings).control.inspect(timeout=1.0).ping() or {}
    if local:
        host = socket.gethostname()
        replies = {name: r for name, r in replies.items() if name.endswith(f"@{host}")}
        if not replies:
            out["problems"].append(f"no worker on this host ({host}) answered ping")
    elif not replies:
        out["problems"].append("no worker answered ping (start 'woow worker')")
    return {"alive": sorted(replies)}


def _api(url: str) -> dict[str, Any]:
    import httpx

    base = url.rstrip("/")
    reply = httpx.get(f"{base}/healthz", timeout=5.0)
    if reply.status_code != 200:
        raise RuntimeError(f"{base}/healthz answered {reply.status_code}")
    return {"url": base}


def _safe_url(url: str) -> str:
    from ..redis_store import hide_password

    return hide_password(url)


@click.command()
@click.option(
    "--check",
    "only",
    multiple=True,
    type=click.Choice(CHECKS),
    help="Check only these components (repeatable), e.g. for a container health check; 'api' is checked "
    "only when named.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Beat and workers of this host only (a standby beat counts): the health check of one container.",
)
@click.option(
    "--api-url", default="http://127.0.0.1:8000", show_default=True, help="Base URL of the API for --check api."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for monitoring.")
@pass_app
def status(app: AppContext, only: tuple[str, ...], local: bool, api_url: str, as_json: bool) -> None:
    """Health of the whole system. Exit 0 healthy, 1 degraded, 2 down.

    \b
    Checks: PostgreSQL (and schema revision), Redis, the broker and its queue depth,
    the active beat and its last tick, standby beats, live workers, triggers by state,
    executions running and failed in the last hour.
    """
    report = collect_status(app, only or COMPONENTS, local=local, api_url=api_url)
    if as_json:
        emit_json(report)
    else:
        _print_status(report)
    raise SystemExit(report["exit_code"])


def _print_status(report: dict[str, Any]) -> None:
    rows = []
    for name, c in report["checks"].items():
        detail = c["detail"]
        if name == "beat" and c["ok"]:
            active = detail.get("active") or {}
            detail = (
                f"active {active.get('host', '?')} pid {active.get('pid', '?')}, last tick "
                f"{detail.get('last_tick_age_s')}s ago, {len(detail.get('standbys', []))} standby, "
                f"{detail.get('entries')} entries"
            )
        elif name == "workers" and c["ok"]:
            detail = ", ".join(detail["alive"]) or "none"
        elif name == "broker" and c["ok"]:
            detail = f"{detail['url']} queue {detail['queue']}: {detail['queue_depth']} waiting"
        elif isinstance(detail, dict):
            detail = ", ".join(f"{k}={v}" for k, v in detail.items())
        rows.append((name, "ok" if c["ok"] else "FAIL", detail, c["ms"]))
    table(None, ["check", "", "detail", "ms"], rows)
    counts = report.get("counts")
    if counts:
        states = ", ".join(f"{k} {v}" for k, v in sorted(counts["triggers_by_state"].items())) or "none"
        click.echo(f"triggers: {states}")
        click.echo(
            f"executions: {counts['executions_running']} running, {counts['failed_last_hour']} failed in the last hour"
        )
    for p in report["problems"]:
        click.echo(f"problem: {p}")
    click.echo(f"status: {report['state']}")
