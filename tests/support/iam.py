"""Users with given roles, and HTTP clients that act as them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import structlog
from fastapi import FastAPI

from obpilot.db.engine import Database
from obpilot.iam import service
from obpilot.iam.models import User
from obpilot.iam.permissions import PermissionSet, Principal
from obpilot.iam.schemas import UserCreate
from obpilot.logging import configure_logging

ADMIN_PASSWORD = "Admin-Passw0rd!"
USER_PASSWORD = "User-Passw0rd!"
# Acts for the tests' own set-up; it may grant anything.
SETUP = Principal(id=0, username="test-setup", permissions=PermissionSet.parse(["**"]))


async def add_user(
    database: Database,
    username: str,
    roles: list[str] | tuple[str, ...] = (),
    *,
    password: str = USER_PASSWORD,
    email: str | None = None,
) -> User:
    async with database.transaction(write=True) as session:
        return await service.create_user(
            session,
            spec=UserCreate(username=username, password=password, email=email, roles=list(roles)),
            actor=SETUP,
        )


def client_for(
    app: FastAPI, username: str | None = None, password: str = USER_PASSWORD
) -> httpx.AsyncClient:
    """A client of `app` (whose lifespan the caller has entered) with Basic credentials, or
    anonymous without a username."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        auth=(username, password) if username else None,
    )


@contextmanager
def json_logs() -> Iterator[None]:
    """JSON log lines on (the captured) stderr; use it inside the test, once capsys has
    replaced stderr."""
    configure_logging(fmt="json", level="DEBUG")
    try:
        yield
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
