"""Process drivers: how to see, start and stop one kind of server on a host.

driver = driver_for(spec, executor, timeouts)
status = await driver.status(log=log)
await driver.start(log=log)                  # already running: success
await driver.stop(log=log, force=False)      # already stopped: success
"""

from __future__ import annotations

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
from obpilot.hosts.executor import HostExecutor

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
