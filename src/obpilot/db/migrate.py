"""Alembic, driven from code: `obpilot db upgrade` and server start-up call `upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from obpilot.db.engine import as_sync_url, restrict_sqlite_files

# The migrations sit beside db/, with the schema they build (obpilot.schema).
MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"


def alembic_config(url: str | URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a password.
    rendered = as_sync_url(url).render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", rendered)
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    restrict_sqlite_files(url)  # a new SQLite metadb is private from its first byte
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_revision(url: str | URL) -> str | None:
    engine = create_engine(as_sync_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
