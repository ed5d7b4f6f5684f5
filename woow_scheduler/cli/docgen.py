"""Renders docs/cli.md from the commands' own ``--help``, so the page can never drift from the CLI.

    python -m woow_scheduler.cli.docgen > docs/cli.md     (a test checks the file is current)
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
        # help_option_names as the root group sets them, so the page is the same whether or not the
        # CLI already ran in this process (click caches each command's help option on first use)
        ctx = click.Context(cmd, info_name=" ".join(path), terminal_width=WIDTH, max_content_width=WIDTH,
                            help_option_names=["-h", "--help"])
        parts += [f"## `{' '.join(path)}`", "", "```", cmd.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
