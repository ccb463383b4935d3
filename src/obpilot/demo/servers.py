"""The demo's safety net: its seekdb servers on this machine stopped by obpilot's own
seekdb driver (which finds each by its pid-file lock, binary and directory), for when the
API did not delete them (no metadb, an older demo's taken-over cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from obpilot.demo.state import DemoServer
from obpilot.errors import HostError, ServerProcessError
from obpilot.hosts.drivers import Cause, ProcessSpec, ProcessState, SeekdbDriver
from obpilot.hosts.local import LocalExecutor

Say = Callable[[str], None]


def _driver(server: DemoServer, executor: LocalExecutor) -> SeekdbDriver:
    return SeekdbDriver(
        ProcessSpec(kind="seekdb", sql_port=server.port, home_path=server.home), executor
    )


async def stop_settled(driver: SeekdbDriver, *, force: bool) -> None:
    """Stops the server. Just after a seekdb's main thread has exited, its other threads
    may hold the pid-file lock a moment longer, which the driver's check after the stop
    can see: then it looks again, for a few seconds at most."""
    for _ in range(50):
        try:
            await driver.stop(force=force)
            return
        except ServerProcessError as error:
            if error.cause != Cause.STILL_RUNNING:
                raise
        await asyncio.sleep(0.1)
    await driver.stop(force=force)


async def stop(servers: Sequence[DemoServer], say: Say) -> list[str]:
    """Kills every server (after the driver has identified it by its pid-file lock,
    binary and directory); returns what could not be stopped."""
    executor = LocalExecutor()

    async def one(server: DemoServer) -> None:
        driver = _driver(server, executor)
        before = await driver.status()
        if before.state == ProcessState.STOPPED:
            return
        await stop_settled(driver, force=True)
        say(f"seekdb {server.zone} port {server.port}: stopped (pid {before.pid})")

    try:
        results = await asyncio.gather(*(one(s) for s in servers), return_exceptions=True)
    finally:
        await executor.close()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, HostError | ServerProcessError | OSError
        ):
            raise result
    return [str(r) for r in results if isinstance(r, BaseException)]
