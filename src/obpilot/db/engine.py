"""The metadb connection: one async engine per process, with each dialect's settings."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
}
# Execution option that asks SQLite for BEGIN IMMEDIATE: the write lock is taken up
# front, so two writers queue on busy_timeout instead of failing with "database is locked".
IMMEDIATE = "obpilot_sqlite_immediate"


def dialect_family(url: str | URL) -> str:
    name = make_url(url).get_backend_name()
    if name not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported metadb dialect {name!r}; use sqlite, postgresql or mysql")
    return name


def as_async_url(url: str | URL) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername=ASYNC_DRIVERS[dialect_family(parsed)])


def as_sync_url(url: str | URL) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername=SYNC_DRIVERS[dialect_family(parsed)])


def restrict_sqlite_files(url: str | URL) -> None:
    """Makes a SQLite metadb file private to this user (0600, like secret.key): it holds
    password hashes and encrypted secrets. Creating it here, before SQLite does, leaves no
    moment when it is readable by others; SQLite gives the -wal and -shm files it makes the
    database file's mode, and those that exist already are restricted too."""
    parsed = make_url(url)
    database = parsed.database
    if dialect_family(parsed) != "sqlite" or not database or database == ":memory:":
        return
    if parsed.query.get("uri"):
        return  # a `file:` URI, which SQLite resolves itself
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite itself will say that the file cannot be opened
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        if file.exists():
            file.chmod(0o600)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Python 3.11's sqlite3 would issue its own deferred BEGIN; take control of it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine and hands out sessions. Callers own their transactions."""

    def __init__(self, url: str | URL, *, sqlite_busy_timeout_ms: int = 30_000) -> None:
        self.url = as_async_url(url)
        self.dialect = dialect_family(self.url)
        restrict_sqlite_files(self.url)
        options: dict[str, Any] = {"pool_pre_ping": self.dialect != "sqlite"}
        if self.dialect == "mysql":
            # REPEATABLE READ's gap locks make short claim transactions collide.
            options["isolation_level"] = "READ COMMITTED"
            options["pool_recycle"] = 3600
        self.engine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, sqlite_busy_timeout_ms)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Same pool; on SQLite its transactions start with BEGIN IMMEDIATE.
        self.write_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # growing steps (up to 100 ms) before it looks again. Queueing this process's write
        # transactions here, first come first served, spares them those sleeps; other
        # processes still meet the busy timeout.
        self._sqlite_writers = asyncio.Lock() if self.dialect == "sqlite" else None

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.
        `write=True` for a transaction that reads then writes rows others write too (on
        SQLite it takes the write lock first). Never nest a write transaction in another."""
        if write and self._sqlite_writers is not None:
            async with (
                self._sqlite_writers,
                self.write_sessionmaker() as session,
                session.begin(),
            ):
                yield session
            return
        maker = self.write_sessionmaker if write else self.sessionmaker
        async with maker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
