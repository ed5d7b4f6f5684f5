"""``woow api`` (the HTTP API under uvicorn) and ``woow token`` (its bearer tokens)."""

from __future__ import annotations

import click

from .context import AppContext, pass_app
from .output import emit_json, fmt_time, table

JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="uvicorn worker processes.")
@pass_app
def api(app: AppContext, host: str, port: int, workers: int) -> None:
    """Run the HTTP API (uvicorn) and the operator console at /ui (docs/console.md).

    OpenAPI at /openapi.json, docs at /docs, health at /healthz.
    """
    import uvicorn

    settings = app.settings  # fail now, with one line, on a bad setting
    uvicorn.run(
        "woow_scheduler.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@click.group()
def token() -> None:
    """Bearer tokens of the HTTP API (only their SHA-256 is stored)."""


@token.command("create")
@click.option("--user", "user_id", required=True, help="The user the token acts for (owner of its workflows).")
@click.option("--admin", is_flag=True, help="The token sees and changes every user's workflows.")
@click.option("--name", default="", help="A label, e.g. the front end or person it is for.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Repeatable: read, write, admin, metrics, or a privilege (shell, python, celery_task, "
    "http_private). Default: read write. '--scope read' alone makes a read-only token.",
)
@click.option("--expires-in", "expires_in", default=None, help="Lifetime, e.g. 30d, 12h (default: no expiry).")
@JSON_OPT
@pass_app
def create(
    app: AppContext, user_id: str, admin: bool, name: str, scopes: tuple[str, ...], expires_in: str | None,
    as_json: bool,
) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from datetime import timedelta

    from ..tokens import create_token
    from ..triggers import parse_duration

    lifetime = timedelta(seconds=parse_duration(expires_in, field="expires-in")) if expires_in else None
    view, secret = create_token(
        app.db, user_id=user_id, name=name, is_admin=admin, scopes=scopes, expires_in=lifetime
    )
    if as_json:
        emit_json({**view.model_dump(mode="json"), "token": secret})
        return
    click.echo(secret)
    click.echo(
        f"token {view.id} for user '{view.user_id}'{' (admin)' if view.is_admin else ''}: "
        "store it now, it is not shown again",
        err=True,
    )


@token.command("list")
@JSON_OPT
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List tokens (never their secrets), revoked ones included."""
    from ..tokens import list_tokens

    views = list_tokens(app.db)
    if as_json:
        emit_json([v.model_dump(mode="json") for v in views])
        return
    table(
        None,
        ["id", "user", "name", "admin", "scopes", "created", "last used", "expires", "revoked"],
        [
            (
                v.id,
                v.user_id,
                v.name,
                "yes" if v.is_admin else "",
                " ".join(v.scopes),
                fmt_time(v.created_at),
                fmt_time(v.last_used_at),
                fmt_time(v.expires_at) if v.expires_at else "",
                fmt_time(v.revoked_at) if v.revoked_at else "",
            )
            for v in views
        ],
    )


@token.command("revoke")
@click.argument("token_id")
@pass_app
def revoke(app: AppContext, token_id: str) -> None:
    """Revoke a token by its id (from `woow token list`); it is refused from now on."""
    from ..tokens import revoke_token

    view = revoke_token(app.db, token_id)
    click.echo(f"revoked token {view.id} of user '{view.user_id}' at {fmt_time(view.revoked_at)}")
