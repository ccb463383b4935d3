"""Dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.engine import Database


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response leaves, so a client
    never sees success for a write that did not commit."""
    async with database.transaction() as session:
        yield session


async def get_write_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """As `get_session`, for requests that read then write rows others may write too: on
    SQLite the transaction takes the write lock first (BEGIN IMMEDIATE)."""
    async with database.transaction(write=True) as session:
        yield session


# For a route whose service opens its own short transactions (around host I/O, say).
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
WriteSessionDep = Annotated[AsyncSession, Depends(get_write_session, scope="function")]
