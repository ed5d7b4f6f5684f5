"""Renders generated docs, so they can never drift from the code (tests check both are current):

python -m woow_scheduler.cli.docgen > docs/cli.md                     # every command's --help
python -m woow_scheduler.cli.docgen --config > config/woow.example.toml  # every setting
"""

from __future__ import annotations

import click

from . import cli

WIDTH = 100


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            out.extend(_walk(cmd.commands[name], [*path, name]))
    return out


def render() -> str:
    parts = [
        "# `woow` command reference",
        "",
        "Generated from the commands' `--help` by `python -m woow_scheduler.cli.docgen`; a test keeps it current.",
        "Exit codes: 0 success, 2 bad input (one line `error: <what> — <why>` on stderr), 1 runtime failure.",
        "",
    ]
    for path, cmd in _walk(cli, ["woow"]):
        ctx = click.Context(
            cmd,
            info_name=" ".join(path),
            terminal_width=WIDTH,
            max_content_width=WIDTH,
            help_option_names=["-h", "--help"],
        )
        parts += [f"## `{' '.join(path)}`", "", "```", cmd.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


def render_config_example() -> str:
    import json

    from ..settings import ENV_PREFIX, Settings

    lines = [
        "# woow-scheduler settings: every setting with its default (generated; see woow_scheduler/cli/docgen.py).",
        f"# Point {ENV_PREFIX}CONFIG at a copy of this file; {ENV_PREFIX}* environment variables override it.",
        f"# Keys are the setting names; the environment variable is {ENV_PREFIX} + the upper-case name.",
        "[woow]",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(f"# {field.description}  ({ENV_PREFIX}{name.upper()})")
        if default is None:
            lines.append(f'# {name} = "..."   # unset by default')
        elif isinstance(default, bool):
            lines.append(f"# {name} = {'true' if default else 'false'}")
        elif isinstance(default, int | float):
            lines.append(f"# {name} = {default!r}")
        else:
            lines.append(f"# {name} = {json.dumps(default)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(render_config_example() if "--config" in sys.argv[1:] else render(), end="")
