"""What every cluster operation's subtasks share: finding a server's process on its host
(the inventory's server and the credentials' way to its host, combined) and recording
what a host reports, in short transactions. Handlers never hold a metadb transaction
across host I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.credentials.service import host_target
from obpilot.db.engine import Database
from obpilot.engine import SubtaskContext, SubtaskError
from obpilot.hosts.access import HostAccess, HostTarget
from obpilot.hosts.drivers import (
    ProcessDriver,
    ProcessSpec,
    ProcessStatus,
    ProcessTimeouts,
    driver_for,
)
from obpilot.hosts.drivers.process import ProcessState
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Server, ServerStatus
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings


@dataclass(frozen=True)
class FlowResources:
    """What the app hands every subtask of these flows as `ctx.resources` (and the
    reconciler)."""

    settings: Settings
    host_access: HostAccess
    secret_box: SecretBox


#: What a subtask of these flows sees.
FlowContext = SubtaskContext[FlowResources]


def server_id_of(ctx: FlowContext) -> int:
    """This subtask's server: its fan-out element, or `server_id` for a one-server task."""
    value = ctx.item if ctx.parallel_key is not None else ctx.require("server_id")
    return int(value)


def zone_name_of(ctx: FlowContext) -> str:
    return ctx.item if ctx.parallel_key is not None else ctx.require("zone_name")


def cluster_id_of(ctx: FlowContext) -> int:
    return int(ctx.require("cluster_id"))


def flag(ctx: FlowContext, key: str) -> bool:
    return (ctx.get(key) or "").lower() == "true"


@dataclass(frozen=True)
class ServerProcess:
    """Where a stored server's process is and how to reach its host: read inside a
    transaction, used outside one."""

    server: Server
    host_id: int
    spec: ProcessSpec
    target: HostTarget

    def driver(self, resources: FlowResources) -> ProcessDriver:
        executor = resources.host_access.executor(self.host_id, self.target)
        return driver_for(self.spec, executor, ProcessTimeouts.from_settings(resources.settings))


async def server_process(
    session: AsyncSession, server: Server, secret_box: SecretBox
) -> ServerProcess:
    host = await inventory.get_host(session, host_id=server.host_id)
    spec = await inventory.server_process_spec(session, server, secret_box=secret_box)
    target = await host_target(session, host=host, secret_box=secret_box)
    return ServerProcess(server, host.id, spec, target)


async def server_driver(
    database: Database, resources: FlowResources, server_id: int
) -> tuple[ProcessDriver, Server]:
    """The process driver of one stored server (read in a short transaction)."""
    async with database.transaction() as session:
        server = await inventory.find_server(session, server_id)
        if server is None:
            raise SubtaskError(f"OB server {server_id} is no longer registered")
        process = await server_process(session, server, resources.secret_box)
    return process.driver(resources), server


def observed_status(process: ProcessStatus, stored: str) -> ServerStatus:
    """What a server's process says its status is. A process that vanished without an
    operation of obpilot is UNAVAILABLE, not STOPPED: nobody stopped it."""
    if process.state == ProcessState.RUNNING:
        return ServerStatus.RUNNING
    if process.state == ProcessState.STOPPED:
        if stored in (ServerStatus.STOPPED, ServerStatus.STOPPING):
            return ServerStatus.STOPPED
        return ServerStatus.UNAVAILABLE
    return ServerStatus.UNAVAILABLE


async def record_server_status(
    database: Database, server_id: int, status: str, **times: datetime | None
) -> None:
    """`times`: start_time and stop_time changed with the status."""
    async with database.transaction(write=True) as session:
        await inventory.set_server_status(session, server_id, status, **times)


async def refresh_server_status(
    ctx: FlowContext, driver: ProcessDriver, server: Server
) -> ServerStatus:
    """After a failed host action: record what really runs, never a guess."""
    status = ServerStatus.UNAVAILABLE
    try:
        process = await driver.status(log=ctx.log)
    except Exception as error:  # the host itself may be what failed
        ctx.log(f"cannot read the status of {driver.label}: {error}")
    else:
        # Inside an operation a process found stopped is STOPPED: obpilot was acting on it.
        status = observed_status(process, ServerStatus.STOPPING)
    await record_server_status(ctx.database, server.id, status)
    ctx.log(f"server {server.ip}:{server.sql_port} recorded as {status}")
    return status
