"""Process drivers: how to see, start and stop one kind of server on a host.

driver = driver_for(spec, executor, timeouts)
status = await driver.status(log=log)
await driver.start(log=log)                  # already running: success
await driver.stop(log=log, force=False)      # already stopped: success
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from obpilot.hosts.drivers.observer import ObserverDriver
from obpilot.hosts.drivers.process import (
    Cause,
    PortOwner,
    ProcessDriver,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    ProcessTimeouts,
)
from obpilot.hosts.drivers.seekdb import SeekdbDriver
from obpilot.hosts.executor import CommandResult, HostAgent, HostExecutor, HostPipe

__all__ = [
    "Cause",
    "ObserverDriver",
    "PortOwner",
    "ProcessDriver",
    "ProcessSpec",
    "ProcessState",
    "ProcessStatus",
    "ProcessTimeouts",
    "SeekdbDriver",
    "check_spec",
    "driver_for",
]

DRIVERS: dict[str, type[SeekdbDriver] | type[ObserverDriver]] = {
    "seekdb": SeekdbDriver,
    "observer": ObserverDriver,
}


def driver_for(
    spec: ProcessSpec, executor: HostExecutor, timeouts: ProcessTimeouts | None = None
) -> ProcessDriver:
    try:
        driver_class = DRIVERS[spec.kind]
    except KeyError:
        raise ValueError(f"no process driver for server kind {spec.kind!r}") from None
    return driver_class(spec, executor, timeouts)


class _NoHost:
    """The executor of a driver that only validates a spec: it never runs anything."""

    label = "validation"
    python = "python3"

    async def run(
        self,
        argv: Sequence[str],
        *,
        step: str,
        time_limit: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> CommandResult:
        raise RuntimeError("validation touches no host")

    async def open_pipe(self, argv: Sequence[str], *, step: str) -> HostPipe:
        raise RuntimeError("validation touches no host")

    async def put_file(
        self, source: Path, destination: str, *, mode: int, step: str, time_limit: float
    ) -> None:
        raise RuntimeError("validation touches no host")

    @property
    def agent(self) -> HostAgent:
        raise RuntimeError("validation touches no host")

    async def close(self) -> None:
        return None


def check_spec(spec: ProcessSpec) -> list[str]:
    """The kind's own checks of the spec it would run with, before any host is touched
    (seekdb refuses a bad parameter value with a silent exit, so obpilot checks values
    itself): raises ValueError or InvalidServerParameter, returns warnings."""
    try:
        driver_class = DRIVERS[spec.kind]
    except KeyError:
        raise ValueError(f"no process driver for server kind {spec.kind!r}") from None
    return driver_class(spec, _NoHost()).validate()
