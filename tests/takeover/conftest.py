from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from obpilot.errors import ServerProcessError
from obpilot.hosts.drivers import Cause, SeekdbDriver
from tests.support.fleet import Fleet


async def stop_cleanly(driver: SeekdbDriver) -> None:
    """The clean stop (SIGUSR1). A process whose main thread has exited can hold its
    pid-file lock for a moment longer, which the driver's verification may see: look
    again then."""
    for _ in range(50):
        try:
            await driver.stop()
            return
        except ServerProcessError as error:
            if error.cause != Cause.STILL_RUNNING:
                raise
        await asyncio.sleep(0.1)
    await driver.stop()


@pytest.fixture(scope="session")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    """Two real seekdb servers that the takeover tests find as they are: the first one
    running, the second one initialised and then stopped. Takeover never changes that."""
    fleet = Fleet(tmp_path_factory.mktemp("takeover"), 2)
    try:
        await fleet.ensure_running()
        await stop_cleanly(fleet.driver(fleet.servers[1]))
        yield fleet
    finally:
        await fleet.stop_all()
