"""``woow beat``, ``woow worker``, ``woow flower`` and ``woow dev``: the long-running processes."""

from __future__ import annotations

import os
import sys

import click

from .context import AppContext, pass_app

CELERY_APP = "woow_scheduler.worker"
SCHEDULER = "woow_scheduler.beat:WoowScheduler"
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", CELERY_APP, *args]


def _exec(argv: list[str]) -> None:
    """Replace this process with the command, so signals (Ctrl-C, SIGTERM) reach Celery directly."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


@click.command(context_settings=PASS_THROUGH)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def beat(app: AppContext, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat with the woow scheduler (extra args go to `celery beat`).

    Start several for high availability: one fires, the others wait on the beat lock.
    """
    app.settings  # noqa: B018 - fail now, with one line, on a bad setting
    args = list(celery_args)
    if not any(a.startswith(("--loglevel", "-l")) for a in args):
        args += ["--loglevel", app.settings.log_level]
    _exec(celery_argv("beat", "-S", SCHEDULER, *args))


@click.command(context_settings=PASS_THROUGH)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def worker(app: AppContext, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on the woow queue, sending events for Flower (extra args go to `celery worker`)."""
    s = app.settings
    args = list(celery_args)
    if not any(a in {"-Q", "--queues"} or a.startswith("--queues=") for a in args):
        args += ["-Q", s.queue]
    if not any(a.startswith(("--loglevel", "-l")) for a in args):
        args += ["--loglevel", s.log_level]
    _exec(celery_argv("worker", "-E", *args))


@click.command(context_settings=PASS_THROUGH)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def flower(app: AppContext, flower_args: tuple[str, ...]) -> None:
    """Run Flower against the woow broker (extra args go to Flower, e.g. --port=5555)."""
    app.settings  # noqa: B018
    # Flower reads the broker's type from its URL: keep kombu's own Redis transport for it
    os.environ["WOOW_BROKER_CLIENT_REUSE"] = "false"
    _exec(celery_argv("flower", *flower_args))


@click.command()
@click.option(
    "--cron",
    "cron_expr",
    default="*/5 * * * * ?",
    show_default=True,
    help="Cron of the demo trigger seeded into an empty database.",
)
@click.option("--concurrency", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--for", "duration", type=float, default=None, help="Stop by itself after this many seconds.")
@click.option(
    "--dir",
    "workdir",
    default=".woow-dev",
    show_default=True,
    help="Where the embedded Redis and the SQLite database keep their files.",
)
def dev(cron_expr: str, concurrency: int, duration: float | None, workdir: str) -> None:
    """Everything in one terminal: embedded Redis, SQLite, beat and a worker, with live output.

    Uses WOOW_REDIS_URL / WOOW_DATABASE_URL when they are set. Ctrl-C stops every child process.
    """
    from .dev import DevRunner

    raise SystemExit(DevRunner(workdir=workdir, cron=cron_expr, concurrency=concurrency, duration=duration).run())
