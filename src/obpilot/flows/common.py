"""What every cluster operation's subtasks share: finding a server's process on its host,
reading and writing statuses in short transactions, and deriving zone and cluster status
from their servers. Handlers never hold a metadb transaction across host I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.credentials.service import host_target, server_process_spec
from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import SubtaskContext, SubtaskError
from obpilot.hosts.access import HostAccess
from obpilot.hosts.drivers import (
    ProcessDriver,
    ProcessSpec,
    ProcessStatus,
    ProcessTimeouts,
    driver_for,
)
from obpilot.hosts.drivers.base import ProcessState
from obpilot.inventory.models import (
    Cluster,
    ClusterStatus,
    Host,
    Server,
    ServerStatus,
    Zone,
    ZoneStatus,
)
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings


@dataclass(frozen=True)
class FlowResources:
    """What the app hands every subtask through `ctx.resources`."""

    settings: Settings
    host_access: HostAccess
    secret_box: SecretBox

    @classmethod
    def of(cls, ctx: SubtaskContext) -> FlowResources:
        resources = ctx.resources
        return cls(resources["settings"], resources["host_access"], resources["secret_box"])


def server_id_of(ctx: SubtaskContext) -> int:
    """This subtask's server: its fan-out element, or `server_id` for a one-server task."""
    value = ctx.item if ctx.parallel_key is not None else ctx.require("server_id")
    return int(value)


def zone_name_of(ctx: SubtaskContext) -> str:
    return ctx.item if ctx.parallel_key is not None else ctx.require("zone_name")


def cluster_id_of(ctx: SubtaskContext) -> int:
    return int(ctx.require("cluster_id"))


def flag(ctx: SubtaskContext, key: str) -> bool:
    return (ctx.get(key) or "").lower() == "true"


async def process_spec(session: AsyncSession, server: Server, secret_box: SecretBox) -> ProcessSpec:
    zone = await session.get_one(Zone, server.zone_id)
    cluster = await session.get_one(Cluster, server.cluster_id)
    return server_process_spec(server, zone=zone, cluster=cluster, secret_box=secret_box)


async def server_driver(
    database: Database, resources: FlowResources, server_id: int
) -> tuple[ProcessDriver, Server]:
    """The process driver of one stored server (read in a short transaction)."""
    async with database.transaction() as session:
        server = await session.get(Server, server_id)
        if server is None:
            raise SubtaskError(f"OB server {server_id} is no longer registered")
        host = await session.get_one(Host, server.host_id)
        spec = await process_spec(session, server, resources.secret_box)
        target = await host_target(session, host=host, secret_box=resources.secret_box)
    executor = resources.host_access.executor(host.id, target)
    timeouts = ProcessTimeouts.from_settings(resources.settings)
    return driver_for(spec, executor, timeouts), server


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


def zone_status_from(servers: list[str]) -> ZoneStatus:
    if servers and all(status == ServerStatus.STOPPED for status in servers):
        return ZoneStatus.STOPPED
    if any(status == ServerStatus.RUNNING for status in servers):
        return ZoneStatus.RUNNING
    return ZoneStatus.UNAVAILABLE


def cluster_status_from(zones: list[str]) -> ClusterStatus:
    if zones and all(status == ZoneStatus.STOPPED for status in zones):
        return ClusterStatus.STOPPED
    if any(status == ZoneStatus.RUNNING for status in zones):
        return ClusterStatus.RUNNING
    return ClusterStatus.UNAVAILABLE


async def set_server_status(
    database: Database, server_id: int, status: str, **times: datetime | None
) -> None:
    async with database.transaction(write=True) as session:
        values: dict[str, Any] = {"status": status, "update_time": utcnow(), **times}
        await session.execute(update(Server).where(Server.id == server_id).values(**values))


async def set_zone_status(database: Database, cluster_id: int, zone_name: str, status: str) -> None:
    async with database.transaction(write=True) as session:
        await session.execute(
            update(Zone)
            .where(Zone.cluster_id == cluster_id, Zone.name == zone_name)
            .values(status=status, update_time=utcnow())
        )


async def set_cluster_status(database: Database, cluster_id: int, status: str) -> None:
    async with database.transaction(write=True) as session:
        await session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id)
            .values(status=status, update_time=utcnow())
        )


async def derive_zone_status(session: AsyncSession, zone_id: int) -> ZoneStatus:
    statuses = await session.scalars(select(Server.status).where(Server.zone_id == zone_id))
    return zone_status_from(list(statuses))


async def derive_cluster_status(session: AsyncSession, cluster_id: int) -> ClusterStatus:
    statuses = await session.scalars(select(Zone.status).where(Zone.cluster_id == cluster_id))
    return cluster_status_from(list(statuses))


async def refresh_server_status(
    ctx: SubtaskContext, driver: ProcessDriver, server: Server
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
    await set_server_status(ctx.database, server.id, status)
    ctx.log(f"server {server.ip}:{server.sql_port} recorded as {status}")
    return status
