"""The subtasks that cluster, zone and server operations are made of. Names and
descriptions are OCP's, so a task looks in obpilot as it does in OCP.

Statuses are never guessed: a prepare step marks the operation (STOPPING, STARTING,
RESTARTING), the host action is verified by the process driver, "Update observer status"
records what the host reports, and zone and cluster status are derived from their
servers. A failed host action records the server's real status before failing."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select

from obpilot.db.base import utcnow
from obpilot.engine import Subtask, SubtaskContext, SubtaskError
from obpilot.errors import HostError, ServerProcessError
from obpilot.flows.common import (
    FlowResources,
    cluster_id_of,
    derive_cluster_status,
    derive_zone_status,
    flag,
    refresh_server_status,
    server_driver,
    server_id_of,
    set_cluster_status,
    set_server_status,
    set_zone_status,
    zone_name_of,
)
from obpilot.hosts.drivers.base import ProcessState
from obpilot.inventory.models import Cluster, ClusterStatus, ServerStatus, Zone, ZoneStatus

HOST_FAILURES = (HostError, ServerProcessError, OSError, TimeoutError)

# ------------------------------------------------------------------ cluster


class _PrepareCluster(Subtask, abstract=True):
    """Marks the cluster as under this operation; rolling back restores the status it had
    before (`former_cluster_status`)."""

    status: ClassVar[ClusterStatus]
    timeout = 30
    resumable = True

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = cluster_id_of(ctx)
        await set_cluster_status(ctx.database, cluster_id, self.status)
        ctx.log(f"cluster {ctx.get('cluster_name')} (id {cluster_id}) is {self.status}")

    async def rollback(self, ctx: SubtaskContext) -> None:
        former = ctx.require("former_cluster_status")
        await set_cluster_status(ctx.database, cluster_id_of(ctx), former)
        ctx.log(f"cluster status restored to {former}")


class PrepareStopCluster(_PrepareCluster):
    name = "Prepare stop cluster"
    status = ClusterStatus.STOPPING


class PrepareStartCluster(_PrepareCluster):
    name = "Prepare start cluster"
    status = ClusterStatus.STARTING


class PrepareRestartCluster(_PrepareCluster):
    name = "Prepare restart cluster"
    status = ClusterStatus.RESTARTING


class UpdateClusterStatus(Subtask):
    """The cluster's status, derived from its zones: STOPPED when all are, RUNNING when
    any zone runs, otherwise UNAVAILABLE. Subclasses name the status the operation must
    reach; a cluster that did not reach it fails the task instead of being reported so."""

    name = "Update OB cluster status"
    timeout = 30
    resumable = True
    expected: ClassVar[ClusterStatus | None] = None

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = cluster_id_of(ctx)
        async with ctx.database.transaction(write=True) as session:
            status = await derive_cluster_status(session, cluster_id)
            cluster = await session.get_one(Cluster, cluster_id)
            cluster.status = status
            cluster.update_time = utcnow()
        ctx.log(f"cluster {ctx.get('cluster_name')} is {status}")
        if self.expected is not None and status != self.expected:
            raise SubtaskError(f"cluster is {status} after the operation, expected {self.expected}")


class UpdateStoppedClusterStatus(UpdateClusterStatus):
    class_name = "obpilot.flows.steps.UpdateStoppedClusterStatus"
    expected = ClusterStatus.STOPPED


class UpdateRunningClusterStatus(UpdateClusterStatus):
    class_name = "obpilot.flows.steps.UpdateRunningClusterStatus"
    expected = ClusterStatus.RUNNING


# ------------------------------------------------------------------ zone


class _PrepareZone(Subtask, abstract=True):
    status: ClassVar[ZoneStatus]
    timeout = 30
    resumable = True

    async def execute(self, ctx: SubtaskContext) -> None:
        zone = zone_name_of(ctx)
        await set_zone_status(ctx.database, cluster_id_of(ctx), zone, self.status)
        ctx.log(f"zone {zone} is {self.status}")

    async def rollback(self, ctx: SubtaskContext) -> None:
        await _derive_zone(ctx, zone_name_of(ctx))


class PrepareStopZone(_PrepareZone):
    name = "Prepare stop OB zone"
    status = ZoneStatus.STOPPING


class PrepareStartZone(_PrepareZone):
    name = "Prepare start OB zone"
    status = ZoneStatus.STARTING


class PrepareRestartZone(_PrepareZone):
    name = "Prepare restart OB zone"
    status = ZoneStatus.RESTARTING


async def _derive_zone(
    ctx: SubtaskContext, zone_name: str, expected: ZoneStatus | None = None
) -> ZoneStatus:
    cluster_id = cluster_id_of(ctx)
    async with ctx.database.transaction(write=True) as session:
        zone = await session.scalar(
            select(Zone).where(Zone.cluster_id == cluster_id, Zone.name == zone_name)
        )
        if zone is None:
            raise SubtaskError(f"zone {zone_name} is no longer registered")
        status = await derive_zone_status(session, zone.id)
        zone.status = status
        zone.update_time = utcnow()
    ctx.log(f"zone {zone_name} is {status}")
    if expected is not None and status != expected:
        raise SubtaskError(f"zone {zone_name} is {status} after the operation, expected {expected}")
    return status


class UpdateZoneStatus(Subtask):
    """The zone's status, derived from its servers: STOPPED when all are, RUNNING when
    any runs, otherwise UNAVAILABLE."""

    name = "Update zone status"
    timeout = 30
    resumable = True
    expected: ClassVar[ZoneStatus | None] = None

    async def execute(self, ctx: SubtaskContext) -> None:
        await _derive_zone(ctx, zone_name_of(ctx), self.expected)


class UpdateStoppedZoneStatus(UpdateZoneStatus):
    class_name = "obpilot.flows.steps.UpdateStoppedZoneStatus"
    expected = ZoneStatus.STOPPED


class UpdateRunningZoneStatus(UpdateZoneStatus):
    class_name = "obpilot.flows.steps.UpdateRunningZoneStatus"
    expected = ZoneStatus.RUNNING


# ------------------------------------------------------------------ observer


class _PrepareObserver(Subtask, abstract=True):
    """Looks at the server's process before anything is done to it: a pid file or base
    dir held by another program stops the operation here, before any signal. Whether the
    operation is about to change the process is published (`changes`), so that rolling
    back undoes only what this task did."""

    status: ClassVar[ServerStatus]
    timeout = 300
    resumable = True

    async def execute(self, ctx: SubtaskContext) -> None:
        resources = FlowResources.of(ctx)
        driver, server = await server_driver(ctx.database, resources, server_id_of(ctx))
        try:
            process = await driver.status(log=ctx.log)
        except HOST_FAILURES as error:
            raise SubtaskError(f"{driver.label}: cannot read the server's state: {error}") from None
        ctx.log(f"{driver.label}: {process.describe()}")
        if process.state == ProcessState.CONFLICT:
            raise SubtaskError(f"{driver.label}: {process.describe()}")
        key = self.changes(server.id, process.state)
        if key is not None:
            await ctx.publish(key, "true")
        await set_server_status(ctx.database, server.id, self.status)

    def changes(self, server_id: int, state: ProcessState) -> str | None:
        """The context key saying "this task changes the process", or None."""
        return None

    async def rollback(self, ctx: SubtaskContext) -> None:
        resources = FlowResources.of(ctx)
        driver, server = await server_driver(ctx.database, resources, server_id_of(ctx))
        await refresh_server_status(ctx, driver, server)


class PrepareStopObserver(_PrepareObserver):
    name = "Prepare stop observer"
    status = ServerStatus.STOPPING

    def changes(self, server_id: int, state: ProcessState) -> str | None:
        return _stopped_key(server_id) if state != ProcessState.STOPPED else None


class PrepareStartObserver(_PrepareObserver):
    name = "Prepare start observer"
    status = ServerStatus.STARTING

    def changes(self, server_id: int, state: ProcessState) -> str | None:
        return _started_key(server_id) if state != ProcessState.RUNNING else None


class PrepareRestartObserver(_PrepareObserver):
    name = "Prepare restart observer"
    status = ServerStatus.RESTARTING

    def changes(self, server_id: int, state: ProcessState) -> str | None:
        # Rolling back a restart starts again a server this task stopped.
        return _stopped_key(server_id) if state != ProcessState.STOPPED else None


def _stopped_key(server_id: int) -> str:
    return f"stopped_server_{server_id}"


def _verified_key(server_id: int) -> str:
    return f"verified_server_{server_id}"


def _started_key(server_id: int) -> str:
    return f"started_server_{server_id}"


class StopObserverProcess(Subtask):
    """Stops the process: the clean stop first (unless `force`), SIGKILL after the grace
    period, verified (pid gone, port closed). Already stopped is success. Rolling back
    starts again a server that this task stopped."""

    name = "Stop observer process"
    timeout = 1200
    resumable = True  # the driver's stop is idempotent

    async def execute(self, ctx: SubtaskContext) -> None:
        resources = FlowResources.of(ctx)
        driver, server = await server_driver(ctx.database, resources, server_id_of(ctx))
        try:
            await driver.stop(
                log=ctx.log, force=flag(ctx, "force"), freeze=flag(ctx, "freeze_before_stop")
            )
        except HOST_FAILURES as error:
            await refresh_server_status(ctx, driver, server)
            raise SubtaskError(f"{driver.label}: stop failed: {error}") from None
        # The driver verified it (pid gone, ports closed): "Update observer status" records
        # that instead of looking again.
        await ctx.publish(_verified_key(server.id), ServerStatus.STOPPED)

    async def rollback(self, ctx: SubtaskContext) -> None:
        server_id = server_id_of(ctx)
        if ctx.get(_stopped_key(server_id)) != "true":
            ctx.log("this task did not stop the server: nothing to start again")
            return
        await _start(ctx, server_id)


class RestartStopObserverProcess(StopObserverProcess):
    class_name = "obpilot.flows.steps.RestartStopObserverProcess"


async def _start(ctx: SubtaskContext, server_id: int) -> None:
    resources = FlowResources.of(ctx)
    driver, server = await server_driver(ctx.database, resources, server_id)
    try:
        process = await driver.start(log=ctx.log)
    except HOST_FAILURES as error:
        await refresh_server_status(ctx, driver, server)
        raise SubtaskError(f"{driver.label}: start failed: {error}") from None
    await set_server_status(
        ctx.database, server.id, ServerStatus.RUNNING, start_time=utcnow(), stop_time=None
    )
    ctx.log(f"{driver.label}: {process.describe()}")
    await ctx.publish(_verified_key(server.id), ServerStatus.RUNNING)  # it answered SQL


class StartObserverProcess(Subtask):
    """Starts the process and waits until it answers SQL. Already running is success.
    Rolling back stops again a server that this task started."""

    name = "Start observer process"
    timeout = 1200
    resumable = True

    async def execute(self, ctx: SubtaskContext) -> None:
        await _start(ctx, server_id_of(ctx))

    async def rollback(self, ctx: SubtaskContext) -> None:
        server_id = server_id_of(ctx)
        if ctx.get(_started_key(server_id)) != "true":
            ctx.log("this task did not start the server: nothing to stop again")
            return
        resources = FlowResources.of(ctx)
        driver, server = await server_driver(ctx.database, resources, server_id)
        try:
            await driver.stop(log=ctx.log)
        except HOST_FAILURES as error:
            await refresh_server_status(ctx, driver, server)
            raise SubtaskError(f"{driver.label}: stop failed: {error}") from None
        await set_server_status(ctx.database, server.id, ServerStatus.STOPPED, stop_time=utcnow())


class RestartStartObserverProcess(StartObserverProcess):
    """In a restart the server was running before: rolling back leaves it running."""

    class_name = "obpilot.flows.steps.RestartStartObserverProcess"

    async def rollback(self, ctx: SubtaskContext) -> None:
        ctx.log("a restarted server stays running")


class UpdateObserverStatus(Subtask, abstract=True):
    """Records the server's status as its host reports it, and checks it is what the
    operation wanted."""

    name = "Update observer status"
    timeout = 300
    resumable = True
    expected: ClassVar[ServerStatus]

    async def execute(self, ctx: SubtaskContext) -> None:
        server_id = server_id_of(ctx)
        if ctx.get(_verified_key(server_id)) == self.expected:
            # The step before verified it on the host moments ago; used once.
            await ctx.publish(_verified_key(server_id), "")
            # A start already recorded its start_time; a stop is stamped here.
            stopped = self.expected == ServerStatus.STOPPED
            times = {"stop_time": utcnow()} if stopped else {}
            await set_server_status(ctx.database, server_id, self.expected, **times)
            ctx.log(
                f"server {server_id} is {self.expected}, as verified on its host by the step before"
            )
            return
        resources = FlowResources.of(ctx)
        driver, server = await server_driver(ctx.database, resources, server_id)
        status = await refresh_server_status(ctx, driver, server)
        if status == ServerStatus.STOPPED and server.status != ServerStatus.STOPPED:
            await set_server_status(ctx.database, server.id, status, stop_time=utcnow())
        if status != self.expected:
            raise SubtaskError(f"{driver.label} is {status}, expected {self.expected}")


class UpdateStoppedObserverStatus(UpdateObserverStatus):
    class_name = "obpilot.flows.steps.UpdateStoppedObserverStatus"
    expected = ServerStatus.STOPPED


class UpdateRunningObserverStatus(UpdateObserverStatus):
    class_name = "obpilot.flows.steps.UpdateRunningObserverStatus"
    expected = ServerStatus.RUNNING
