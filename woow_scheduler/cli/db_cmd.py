"""``woow db``: schema migrations."""

from __future__ import annotations

import click

from ..db import migrate
from .context import AppContext, pass_app
from .output import emit_json


@click.group()
def db() -> None:
    """Database schema: apply migrations, show the revision."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_app
def upgrade(app: AppContext, revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    app.db.ping()
    before = migrate.current_revision(app.db)
    migrate.upgrade(app.db, revision)
    after = migrate.current_revision(app.db)
    click.echo(f"database at revision {after} (was {before or 'empty'})")


@db.command()
@click.option("--revision", required=True, help="Target revision ('base' drops every table).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def downgrade(app: AppContext, revision: str, yes: bool) -> None:
    """Revert migrations down to REVISION."""
    app.db.ping()
    if not yes:
        click.confirm(f"Downgrade the database to {revision}? Data in dropped tables is lost", abort=True)
    migrate.downgrade(app.db, revision)
    click.echo(f"database at revision {migrate.current_revision(app.db) or 'base (empty)'}")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def current(app: AppContext, as_json: bool) -> None:
    """Show the database's revision and the newest one this version knows."""
    app.db.ping()
    cur, head = migrate.current_revision(app.db), migrate.head_revision(app.db)
    if as_json:
        emit_json({"current": cur, "head": head, "up_to_date": cur == head})
        return
    state = "up to date" if cur == head else "needs 'woow db upgrade'"
    click.echo(f"current: {cur or 'empty'}  head: {head}  ({state})")
