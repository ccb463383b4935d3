"""The migrations are the schema: one linear head, reversible, and equal to the models on
every dialect."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint, create_engine, text
from sqlalchemy.exc import SAWarning

from obpilot.db import migrate
from obpilot.db.engine import as_sync_url
from obpilot.schema import metadata
from tests.conftest import IN_CI
from tests.support.databases import SeekdbServer, fresh_database_url


@pytest.fixture
def empty_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if dialect == "seekdb":
        server: SeekdbServer = request.getfixturevalue("seekdb_server")
        yield fresh_database_url(server.admin_url)[0]
        return
    variable = {"postgresql": "OBPILOT_TEST_PG_URL", "mariadb": "OBPILOT_TEST_MYSQL_URL"}[dialect]
    admin = os.environ.get(variable)
    if not admin:
        if IN_CI:
            pytest.fail(f"{variable} is not set")
        pytest.skip(f"{variable} is not set")
    url, drop = fresh_database_url(admin)
    yield url
    drop()


def test_one_linear_head() -> None:
    assert len(migrate.head_revisions()) == 1


def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    head = migrate.head_revisions()[0]
    migrate.upgrade(empty_url)
    assert migrate.current_revision(empty_url) == head
    migrate.downgrade(empty_url, "base")
    assert migrate.current_revision(empty_url) is None
    migrate.upgrade(empty_url)
    assert migrate.current_revision(empty_url) == head


def _reflectable(difference: object, dialect: str) -> bool:
    # SQLAlchemy's MySQL reflection cannot parse seekdb's "KEY ... BLOCK_SIZE 16384 LOCAL"
    # and foreign key lines, so on seekdb those look missing; test_indexes_exist_on_seekdb
    # checks them through information_schema instead.
    return not (
        dialect == "seekdb"
        and isinstance(difference, tuple)
        and difference[0] in ("add_constraint", "add_index", "add_fk")
    )


def test_models_match_migrations(empty_url: str, dialect: str) -> None:
    migrate.upgrade(empty_url)
    engine = create_engine(as_sync_url(empty_url))
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            if dialect == "seekdb":  # the lines above; SQLAlchemy warns of each
                warnings.filterwarnings("ignore", "Unknown schema content", SAWarning)
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert [d for d in differences if _reflectable(d, dialect)] == []


def test_indexes_exist_on_seekdb(seekdb_server: SeekdbServer) -> None:
    url, _ = fresh_database_url(seekdb_server.admin_url)
    migrate.upgrade(url)
    engine = create_engine(as_sync_url(url))
    try:
        with engine.connect() as connection:
            names = {
                row[0]
                for row in connection.execute(
                    text(
                        "SELECT DISTINCT index_name FROM information_schema.statistics "
                        "WHERE table_schema = DATABASE() UNION "
                        "SELECT constraint_name FROM information_schema.table_constraints "
                        "WHERE table_schema = DATABASE() AND constraint_type = 'FOREIGN KEY'"
                    )
                )
            }
    finally:
        engine.dispose()
    expected = {
        str(item.name)
        for table in metadata.tables.values()
        for item in [*table.constraints, *table.indexes]
        if isinstance(item, UniqueConstraint | Index | ForeignKeyConstraint)
    }
    assert expected <= names
