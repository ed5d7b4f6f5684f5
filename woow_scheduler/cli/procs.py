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


METRICS_PORT = click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    envvar="WOOW_METRICS_PORT",
    show_envvar=True,
    help="Serve Prometheus metrics on this port at /metrics (off by default; see docs/operations.md).",
)


def _metrics_env(port: int | None) -> None:
    if port is not None:
        os.environ["WOOW_METRICS_PORT"] = str(port)


@click.command(context_settings=PASS_THROUGH)
@METRICS_PORT
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def beat(app: AppContext, metrics_port: int | None, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat with the woow scheduler (extra args go to `celery beat`).

    Start several for high availability: one fires, the others wait on the beat lock.
    """
    _metrics_env(metrics_port)
    app.settings  # noqa: B018 - fail now, with one line, on a bad setting
    args = list(celery_args)
    if not any(a.startswith(("--loglevel", "-l")) for a in args):
        args += ["--loglevel", app.settings.log_level]
    _exec(celery_argv("beat", "-S", SCHEDULER, *args))


@click.command(context_settings=PASS_THROUGH)
@METRICS_PORT
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def worker(app: AppContext, metrics_port: int | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on the woow queue, sending events for Flower (extra args go to `celery worker`)."""
    _metrics_env(metrics_port)
    s = app.settings
    if s.metrics_port is not None:  # pool children count into files the main process sums
        from ..metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(os.environ)
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
    """Run Flower against the woow broker (extra args go to Flower: --port 5555 or --port=5555)."""
    app.settings  # noqa: B018
    # Flower reads the broker's type from its URL: keep kombu's own Redis transport for it
    os.environ["WOOW_BROKER_CLIENT_REUSE"] = "false"
    _exec(celery_argv("flower", *flower_argv(flower_args)))


def flower_argv(args: tuple[str, ...] | list[str]) -> list[str]:
    """Flower's options as tornado parses them: ``--name=value``.

    tornado only reads the ``=`` form (``--port 5555`` fails with "Option 'port' requires a
    value"), and Flower takes no positional argument, so a bare word after ``--name`` is that
    option's value: join the two.
    """
    out: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg.startswith("--") and "=" not in arg and rest and not rest[0].startswith("-"):
            arg = f"{arg}={rest.pop(0)}"
        out.append(arg)
    return out


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
