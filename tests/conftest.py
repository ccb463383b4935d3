"""Shared fixtures: metadbs on every dialect (schemas built by the migrations), the app,
and an HTTP client.

PostgreSQL and MariaDB come from `scripts/test-services.sh` (its `env` command exports
OBPILOT_TEST_PG_URL and OBPILOT_TEST_MYSQL_URL); seekdb is started here. Outside CI a
missing service skips its tests; with CI=true it fails them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Delete, Table, delete, select, text

from obpilot.app import create_app
from obpilot.db import migrate
from obpilot.db.engine import Database
from obpilot.schema import metadata
from obpilot.settings import Settings
from tests.support.databases import SeekdbServer, fresh_database_url
from tests.support.iam import ADMIN_PASSWORD, add_user, client_for
from tests.support.sshd import sshd  # noqa: F401 - a fixture: one loopback sshd per session

DIALECTS = ("sqlite", "postgresql", "mariadb", "seekdb")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(service: str) -> None:
    message = f"{service} is not available (run `make services-start`)"
    if IN_CI:
        pytest.fail(message + "; CI requires every metadb service")
    pytest.skip(message)


@pytest.fixture(scope="session")
def seekdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeekdbServer]:
    server = SeekdbServer()
    try:
        server.start(tmp_path_factory.mktemp("seekdb-metadb"))
    except (OSError, RuntimeError, TimeoutError) as error:
        _missing(f"seekdb ({error})")
    yield server
    server.stop()


def _server_database(
    request: pytest.FixtureRequest, dialect: str
) -> tuple[str, Callable[[], None]]:
    if dialect == "seekdb":
        server: SeekdbServer = request.getfixturevalue("seekdb_server")
        url, _ = fresh_database_url(server.admin_url)
        # The whole seekdb instance (and its directory) goes away at session end.
        return url, lambda: None
    variable = {"postgresql": "OBPILOT_TEST_PG_URL", "mariadb": "OBPILOT_TEST_MYSQL_URL"}[dialect]
    admin_url = os.environ.get(variable)
    if not admin_url:
        _missing(f"{dialect} ({variable} is not set)")
    assert admin_url is not None
    return fresh_database_url(admin_url)


@pytest.fixture(scope="session")
def metadb_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], str]]:
    """Per dialect, one migrated database for the whole session (made on first use)."""
    urls: dict[str, str] = {}
    drops: list[Callable[[], None]] = []

    def url_for(dialect: str) -> str:
        if dialect not in urls:
            if dialect == "sqlite":
                path = tmp_path_factory.mktemp("sqlite") / "obpilot.db"
                url = f"sqlite+aiosqlite:///{path}"
            else:
                url, drop = _server_database(request, dialect)
                drops.append(drop)
            migrate.upgrade(url)
            urls[dialect] = url
        return urls[dialect]

    yield url_for
    for drop in drops:
        drop()


def _emptying(table: Table) -> Delete:
    """Deletes a table's rows, except what the migrations seed (the default roles)."""
    if table.name == "iam_role":
        return delete(table).where(table.c.builtin.is_(False))
    if table.name == "iam_role_permission":
        roles = metadata.tables["iam_role"]
        custom = select(roles.c.id).where(roles.c.builtin.is_(False))
        return delete(table).where(table.c.role_id.in_(custom))
    return delete(table)


async def _empty_tables(database: Database) -> None:
    async with database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(_emptying(table))
        if database.dialect == "sqlite":  # AUTOINCREMENT ids start again at 1 for each test
            await session.execute(text("DELETE FROM sqlite_sequence"))


async def _database(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await _empty_tables(database)
    try:
        yield database
    finally:
        await _empty_tables(database)
        await database.dispose()


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def any_database(dialect: str, metadb_urls: Callable[[str], str]) -> AsyncIterator[Database]:
    """An empty, migrated metadb on each of the four dialects in turn."""
    async for database in _database(metadb_urls(dialect)):
        yield database


@pytest.fixture
async def database(metadb_urls: Callable[[str], str]) -> AsyncIterator[Database]:
    """An empty, migrated SQLite metadb."""
    async for db in _database(metadb_urls("sqlite")):
        yield db


def _settings(url: str, home: Path) -> Settings:
    return Settings(
        home=home,
        metadb_url=url,
        advertised_address="test-node:8080",
        admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        # The engine tests' templates, registered as a deployment's own would be.
        extra_modules="tests.support.engine_tasks",
    )


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Enters the app's lifespan (which creates `admin`) and acts as admin over HTTP Basic;
    pass `auth=None` to a request to send it anonymously."""
    async with app.router.lifespan_context(app), client_for(app, "admin", ADMIN_PASSWORD) as client:
        yield client


@pytest.fixture
async def app(database: Database, tmp_path: Path) -> FastAPI:
    url = database.url.render_as_string(hide_password=False)
    return create_app(_settings(url, tmp_path), run_migrations=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(app):
        yield client


@pytest.fixture
async def any_client(any_database: Database, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app on each of the four metadb dialects in turn."""
    url = any_database.url.render_as_string(hide_password=False)
    async for client in _client(create_app(_settings(url, tmp_path), run_migrations=False)):
        yield client


UserClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client_as(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> AsyncIterator[UserClientFactory]:
    """`await client_as("CLUSTER_VIEWER", ...)`: a new user holding those roles, and a client
    of the same app acting as that user (HTTP Basic). `username=` names the user."""
    clients: list[httpx.AsyncClient] = []

    async def make(*roles: str, username: str | None = None) -> httpx.AsyncClient:
        name = username or f"u{len(clients) + 1}_" + "_".join(roles).lower()[:40]
        await add_user(database, name, roles)
        user_client = client_for(app, name)
        clients.append(user_client)
        return user_client

    yield make
    for user_client in clients:
        await user_client.aclose()
