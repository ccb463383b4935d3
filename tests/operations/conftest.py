from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fleet import Fleet


@pytest.fixture(scope="session")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    """Three real seekdb servers, shared by the session's operation tests."""
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), 3)
    try:
        await fleet.ensure_running()
        yield fleet
    finally:
        await fleet.stop_all()


@pytest.fixture
async def running_fleet(fleet: Fleet) -> Fleet:
    await fleet.ensure_running()
    return fleet
