"""The commands that run obpilot itself (serve, demo, db, user, openapi). They import the
whole server, so `main` loads this module only when one of them (or the full help) is
asked for: the API client's commands start without it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from obpilot.api.gate import closing_slow_heads
from obpilot.app import create_app
from obpilot.cli.demo import demo
from obpilot.cli.user import app as user_app
from obpilot.db import migrate
from obpilot.logging import configure_logging
from obpilot.settings import Settings

db_app = typer.Typer(help="Metadb schema.", no_args_is_help=True)


def _settings(**overrides: object) -> Settings:
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)  # type: ignore[arg-type]


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port [default: 8080]")] = None,
) -> None:
    """Serve the API (migrating the metadb first)."""
    settings = _settings(host=host, port=port)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        http=closing_slow_heads(settings.header_read_timeout_seconds),
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the metadb migrations."""
    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_metadb_url, revision)
    typer.echo(f"metadb at revision {migrate.current_revision(settings.resolved_metadb_url)}")


@db_app.command("current")
def db_current() -> None:
    """Show the metadb's revision."""
    url = _settings().resolved_metadb_url
    try:
        revision = migrate.current_revision(url)
    except OperationalError as error:
        shown = make_url(url).render_as_string(hide_password=True)
        typer.echo(f"cannot read the metadb {shown}: {error.orig}", err=True)
        raise typer.Exit(1) from None
    typer.echo(revision or "(empty)")


def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of stdout")
    ] = None,
) -> None:
    """Print the OpenAPI document."""
    text = json.dumps(create_app(Settings()).openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


def add_server_commands(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(demo)
    app.add_typer(db_app, name="db")
    app.add_typer(user_app, name="user")
    app.command()(openapi)
