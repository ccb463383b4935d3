"""The migrations are the schema: one linear head, reversible, and equal to the models on
every dialect."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint, create_engine, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning
from sqlalchemy.schema import CreateTable

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


def _tables_with_integer_ids() -> list[str]:
    return sorted(
        table.name
        for table in metadata.tables.values()
        if [column.name for column in table.primary_key.columns] == ["id"]
    )


def test_no_sqlite_table_gives_an_id_twice(tmp_path: Path) -> None:
    """Every table with an integer id is AUTOINCREMENT on SQLite, in the models and in the
    migrated metadb (the drift test does not compare it)."""
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            created = dict(
                connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                ).all()
            )
    finally:
        engine.dispose()
    names = _tables_with_integer_ids()
    assert "ob_cluster" in names
    modelled = {
        name: str(CreateTable(metadata.tables[name]).compile(dialect=sqlite.dialect()))
        for name in names
    }
    assert [name for name in names if "AUTOINCREMENT" not in modelled[name]] == []
    assert [name for name in names if "AUTOINCREMENT" not in created[name]] == []


# Rows as a metadb before 0010 held them, written with the columns that migration knew.
BEFORE_0010 = datetime(2025, 1, 1)  # naive UTC, as the metadb stores it
_cluster = sa.table(
    "ob_cluster",
    *(sa.column(name) for name in ("id", "name", "ob_cluster_id", "type", "status", "origin")),
    sa.column("create_time", sa.DateTime()),
    sa.column("update_time", sa.DateTime()),
)
_task = sa.table(
    "task_instance",
    *(sa.column(name) for name in ("name", "type", "status", "operation", "cluster_id")),
    *(sa.column(name) for name in ("context", "has_outputs", "version")),
    sa.column("create_time", sa.DateTime()),
    sa.column("update_time", sa.DateTime()),
)
_role = sa.table(
    "iam_role",
    *(sa.column(name) for name in ("id", "name", "builtin")),
    sa.column("create_time", sa.DateTime()),
    sa.column("update_time", sa.DateTime()),
)
_role_permission = sa.table("iam_role_permission", sa.column("role_id"), sa.column("expression"))
_times = {"create_time": BEFORE_0010, "update_time": BEFORE_0010}


def _add_cluster(connection: Connection, name: str) -> int:
    connection.execute(
        _cluster.insert().values(
            name=name, ob_cluster_id=1, type="PRIMARY", status="RUNNING", origin="TAKEN_OVER"
        ),
        _times,
    )
    return int(connection.scalar(sa.select(_cluster.c.id).where(_cluster.c.name == name)))


def _add_role(connection: Connection, name: str, grants: list[str]) -> int:
    connection.execute(_role.insert().values(name=name, builtin=False), _times)
    role_id = int(connection.scalar(sa.select(_role.c.id).where(_role.c.name == name)))
    connection.execute(
        _role_permission.insert(), [{"role_id": role_id, "expression": g} for g in grants]
    )
    return role_id


def test_a_cluster_forgotten_before_0010_leaves_no_grant_and_no_id(empty_url: str) -> None:
    """Before 0010 forgetting a cluster left its grants and its tasks; on SQLite the next
    cluster then took its id (the highest). After it, those grants are gone and the next
    cluster's id is past every id a task names."""
    migrate.upgrade(empty_url, "0009")
    engine = create_engine(as_sync_url(empty_url))
    try:
        with engine.begin() as connection:
            kept = _add_cluster(connection, "kept")
            forgotten = _add_cluster(connection, "forgotten")
            connection.execute(
                _task.insert().values(
                    name="Stop cluster",
                    type="MANUAL",
                    status="SUCCESSFUL",
                    operation="EXECUTE",
                    cluster_id=forgotten,
                    context="{}",
                    has_outputs=False,
                    version=0,
                ),
                _times,
            )
            role = _add_role(
                connection,
                "OPERATOR",
                [
                    f"CLUSTER:{kept}:READ",
                    f"CLUSTER:{forgotten}:READ",
                    f"CLUSTER:{forgotten}:TENANT:*:READ",
                    f"CLUSTER:{forgotten + 100}:UPDATE",  # a cluster that never was
                    f"CLUSTER:*:TENANT:{forgotten}:READ",
                    "TASK:*:READ",
                ],
            )
            connection.execute(_cluster.delete().where(_cluster.c.id == forgotten))
        migrate.upgrade(empty_url)
        with engine.begin() as connection:
            grants = set(
                connection.scalars(
                    sa.select(_role_permission.c.expression).where(
                        _role_permission.c.role_id == role
                    )
                )
            )
            clusters = dict(connection.execute(sa.select(_cluster.c.name, _cluster.c.id)).all())
            new = _add_cluster(connection, "new")
    finally:
        engine.dispose()
    assert grants == {f"CLUSTER:{kept}:READ", f"CLUSTER:*:TENANT:{forgotten}:READ", "TASK:*:READ"}
    assert clusters == {"kept": kept}
    assert new > forgotten
