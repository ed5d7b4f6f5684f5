"""The ``woow`` command line.  Every option can also come from a ``WOOW_<COMMAND>_<OPTION>`` variable.

Exit codes: 0 success, 2 bad input (one line ``error: <what> — <why>`` on stderr, nothing written),
1 runtime failure (a store unreachable, a process failed).  ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..errors import WoowError
from .context import AppContext


def format_error(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    what, sep, why = msg.partition(": ")
    if sep and " " not in what.strip():
        return f"error: {what} — {why}"
    return f"error: {msg}"


class WoowGroup(click.Group):
    """Maps the package's errors to one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WoowError as exc:
            app = ctx.find_object(AppContext)
            if app is not None and app.debug:
                raise
            click.echo(format_error(exc), err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=WoowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="woow-scheduler", prog_name="woow")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """woow-scheduler: Quartz-style workflow scheduling on Celery.

    \b
    Settings come from WOOW_* variables (WOOW_DATABASE_URL, WOOW_REDIS_URL,
    WOOW_BROKER_URL, WOOW_KEY_PREFIX, ...) or the TOML file named by WOOW_CONFIG.
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = AppContext(debug=debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from . import api_cmd, calendar_cmd, cron_cmd, db_cmd, history, ops, procs, trigger, workflow

    cli.add_command(db_cmd.db)
    cli.add_command(workflow.workflow)
    cli.add_command(trigger.trigger)
    cli.add_command(calendar_cmd.calendar)
    cli.add_command(cron_cmd.cron)
    cli.add_command(history.history)
    cli.add_command(history.execution)
    cli.add_command(workflow.strategies)
    for command in (ops.sync, ops.status, procs.beat, procs.worker, procs.flower, procs.dev):
        cli.add_command(command)
    cli.add_command(api_cmd.api)
    cli.add_command(api_cmd.token)


def _bind_envvars(cmd: click.Command, path: list[str]) -> None:
    """Every option reads WOOW_<COMMAND PATH>_<LONG OPTION NAME> (shown in --help).

    Named after the option people type (``-n/--count`` -> ``..._COUNT``), not click's internal
    parameter name, so the variable is guessable from the help text.
    """
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.envvar or param.name in {"help", "version"}:
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        name = (longs[0] if longs else param.opts[0]).lstrip("-").replace("-", "_").upper()
        param.envvar = "_".join(["WOOW", *path, name])
        param.show_envvar = True
    if isinstance(cmd, click.Group):
        for sub_name, sub in cmd.commands.items():
            _bind_envvars(sub, [*path, sub_name.replace("-", "_").upper()])


_register()
_bind_envvars(cli, [])


def main() -> None:
    try:
        cli.main(prog_name="woow")
    except KeyboardInterrupt:  # pragma: no cover
        click.echo("interrupted", err=True)
        sys.exit(130)
