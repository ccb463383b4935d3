"""Writes that must not be lost to a passing database error (a deadlock, a dropped
connection): the end of a run, a reaped lease."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.engine import Database
from obpilot.logging import get_logger

log = get_logger(__name__)


async def write_retrying(
    database: Database,
    body: Callable[[AsyncSession], Awaitable[None]],
    *,
    what: str,
    seconds: float = 10.0,
) -> None:
    """Runs `body` in a write transaction, again after a database error until `seconds`
    have passed (then logs and gives up)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    delay = 0.05
    while True:
        try:
            async with database.transaction(write=True) as session:
                await body(session)
            return
        except DBAPIError:
            if loop.time() + delay > give_up:
                log.exception("giving up", what=what)
                return
            log.warning("database error; retrying", what=what, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
