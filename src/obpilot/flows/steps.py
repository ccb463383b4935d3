"""The subtasks that cluster, zone and server operations are made of. Names and
descriptions are OCP's, so a task looks in obpilot as it does in OCP.

Statuses are never guessed: a prepare step marks the operation (STOPPING, STARTING,
RESTARTING), the host action is verified by the process driver, "Update observer status"
records what the host action verified or else what the host reports, and zone and
cluster status are derived from their servers (`inventory.state`). A failed host action
records the server's real status before failing.

What a step hands on to later steps of its task is a named output (`ServerOutput`),
declared by the steps that publish and take it and by the templates that chain them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from obpilot.db.base import utcnow
from obpilot.engine import Subtask, SubtaskError
from obpilot.errors import HostError, ServerProcessError
from obpilot.flows.common import (
    FlowContext,
    cluster_id_of,
    flag,
    record_server_status,
    refresh_server_status,
    server_driver,
    server_id_of,
    zone_name_of,
)
from obpilot.hosts.drivers.process import ProcessIdentity, ProcessState
from obpilot.inventory import service as inventory
from obpilot.inventory.models import ClusterStatus, ServerStatus, ZoneStatus

HOST_FAILURES = (HostError, ServerProcessError, OSError, TimeoutError)


@dataclass(frozen=True)
class ServerOutput:
    """A named value that a step publishes about one server for later steps of its task:
    the output `<name>_server_<id>`, which the task center shows with the subtask."""

    name: str

    def key(self, server_id: int) -> str:
        return f"{self.name}_server_{server_id}"

    def read(self, ctx: FlowContext, server_id: int) -> str | None:
        return ctx.get(self.key(server_id))

    async def publish(self, ctx: FlowContext, server_id: int, value: str) -> None:
        await ctx.publish(self.key(server_id), value)


#: "true" when this task found the server not yet stopped, so that rolling its stop back
#: starts the server again (published by "Prepare stop observer", "Prepare restart
#: observer").
STOPPED_BY_TASK = ServerOutput("stopped")
#: "true" when this task found the server not yet running, so that rolling its start back
#: stops the server again (published by "Prepare start observer").
STARTED_BY_TASK = ServerOutput("started")
#: The server's process as "Prepare stop observer" / "Prepare restart observer" identified
#: it ("pid:start_ticks"), so that "Stop observer process" signals it without looking
#: again (the agent re-checks it just before the signal).
IDENTIFIED_PROCESS = ServerOutput("identified")
#: The status a host action verified on the host: STOPPED after "Stop observer process"
#: (pid gone, ports closed), RUNNING after "Start observer process" (it answers SQL).
#: "Update observer status" records it instead of looking again, once.
VERIFIED_STATUS = ServerOutput("verified")


class FlowStep(Subtask, abstract=True):
    """A subtask of these flows, naming the outputs it hands on to later steps of its task
    (`publishes`) and those it takes from earlier ones (`takes`, in execute or rollback).
    Templates declare the hand-offs between their steps (`templates.cluster_template`)."""

    publishes: ClassVar[frozenset[ServerOutput]] = frozenset()
    takes: ClassVar[frozenset[ServerOutput]] = frozenset()


# ------------------------------------------------------------------ cluster


class _PrepareCluster(FlowStep, abstract=True):
    """Marks the cluster as under this operation; rolling back restores the status it had
    before (`former_cluster_status`)."""

    status: ClassVar[ClusterStatus]
    timeout = 30
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        cluster_id = cluster_id_of(ctx)
        async with ctx.database.transaction(write=True) as session:
            await inventory.set_cluster_status(session, cluster_id, self.status)
        ctx.log(f"cluster {ctx.get('cluster_name')} (id {cluster_id}) is {self.status}")

    async def rollback(self, ctx: FlowContext) -> None:
        former = ctx.require("former_cluster_status")
        async with ctx.database.transaction(write=True) as session:
            await inventory.set_cluster_status(session, cluster_id_of(ctx), former)
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


class UpdateClusterStatus(FlowStep):
    """The cluster's status, derived from its zones: STOPPED when all are, RUNNING when
    any zone runs, otherwise UNAVAILABLE. Subclasses name the status the operation must
    reach; a cluster that did not reach it fails the task instead of being reported so."""

    name = "Update OB cluster status"
    timeout = 30
    resumable = True
    expected: ClassVar[ClusterStatus | None] = None

    async def execute(self, ctx: FlowContext) -> None:
        async with ctx.database.transaction(write=True) as session:
            status = await inventory.update_cluster_status(session, cluster_id_of(ctx))
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


class _PrepareZone(FlowStep, abstract=True):
    status: ClassVar[ZoneStatus]
    timeout = 30
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        zone = zone_name_of(ctx)
        async with ctx.database.transaction(write=True) as session:
            await inventory.set_zone_status(
                session, cluster_id=cluster_id_of(ctx), zone_name=zone, status=self.status
            )
        ctx.log(f"zone {zone} is {self.status}")

    async def rollback(self, ctx: FlowContext) -> None:
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
    ctx: FlowContext, zone_name: str, expected: ZoneStatus | None = None
) -> ZoneStatus:
    async with ctx.database.transaction(write=True) as session:
        status = await inventory.update_zone_status(
            session, cluster_id=cluster_id_of(ctx), zone_name=zone_name
        )
    if status is None:
        raise SubtaskError(f"zone {zone_name} is no longer registered")
    ctx.log(f"zone {zone_name} is {status}")
    if expected is not None and status != expected:
        raise SubtaskError(f"zone {zone_name} is {status} after the operation, expected {expected}")
    return status


class UpdateZoneStatus(FlowStep):
    """The zone's status, derived from its servers: STOPPED when all are, RUNNING when
    any runs, otherwise UNAVAILABLE."""

    name = "Update zone status"
    timeout = 30
    resumable = True
    expected: ClassVar[ZoneStatus | None] = None

    async def execute(self, ctx: FlowContext) -> None:
        await _derive_zone(ctx, zone_name_of(ctx), self.expected)


class UpdateStoppedZoneStatus(UpdateZoneStatus):
    class_name = "obpilot.flows.steps.UpdateStoppedZoneStatus"
    expected = ZoneStatus.STOPPED


class UpdateRunningZoneStatus(UpdateZoneStatus):
    class_name = "obpilot.flows.steps.UpdateRunningZoneStatus"
    expected = ZoneStatus.RUNNING


# ------------------------------------------------------------------ observer


class _PrepareObserver(FlowStep, abstract=True):
    """Looks at the server's process before anything is done to it: a pid file or base
    dir held by another program stops the operation here, before any signal. When the
    process is not yet as the operation wants it, this task is about to change it, and its
    output (`publishes`) says so: rolling back undoes only what this task did."""

    status: ClassVar[ServerStatus]
    #: The process state the operation brings the server to first (a restart stops it).
    wanted: ClassVar[ProcessState]
    #: Published "true" when the process is not yet as the operation wants it.
    marks: ClassVar[ServerOutput]
    timeout = 300
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        driver, server = await server_driver(ctx.database, ctx.resources, server_id_of(ctx))
        try:
            process = await driver.status(log=ctx.log)
        except HOST_FAILURES as error:
            raise SubtaskError(f"{driver.label}: cannot read the server's state: {error}") from None
        ctx.log(f"{driver.label}: {process.describe()}")
        if process.state == ProcessState.CONFLICT:
            raise SubtaskError(f"{driver.label}: {process.describe()}")
        if process.state != self.wanted:
            await self.marks.publish(ctx, server.id, "true")
        identity = process.identity
        if IDENTIFIED_PROCESS in self.publishes and identity is not None:
            await IDENTIFIED_PROCESS.publish(ctx, server.id, identity.text())
        await record_server_status(ctx.database, server.id, self.status)

    async def rollback(self, ctx: FlowContext) -> None:
        driver, server = await server_driver(ctx.database, ctx.resources, server_id_of(ctx))
        await refresh_server_status(ctx, driver, server)


class PrepareStopObserver(_PrepareObserver):
    name = "Prepare stop observer"
    status = ServerStatus.STOPPING
    wanted = ProcessState.STOPPED
    marks = STOPPED_BY_TASK
    publishes = frozenset({STOPPED_BY_TASK, IDENTIFIED_PROCESS})


class PrepareStartObserver(_PrepareObserver):
    name = "Prepare start observer"
    status = ServerStatus.STARTING
    wanted = ProcessState.RUNNING
    marks = STARTED_BY_TASK
    publishes = frozenset({STARTED_BY_TASK})


class PrepareRestartObserver(_PrepareObserver):
    name = "Prepare restart observer"
    status = ServerStatus.RESTARTING
    wanted = ProcessState.STOPPED
    marks = STOPPED_BY_TASK
    publishes = frozenset({STOPPED_BY_TASK, IDENTIFIED_PROCESS})


class StopObserverProcess(FlowStep):
    """Stops the process: the clean stop first (unless `force`), SIGKILL after the grace
    period, verified (pid gone, port closed). Already stopped is success. Rolling back
    starts again a server that this task stopped."""

    name = "Stop observer process"
    timeout = 1200
    resumable = True  # the driver's stop is idempotent
    publishes = frozenset({VERIFIED_STATUS})
    takes = frozenset({STOPPED_BY_TASK, IDENTIFIED_PROCESS})

    async def execute(self, ctx: FlowContext) -> None:
        driver, server = await server_driver(ctx.database, ctx.resources, server_id_of(ctx))
        try:
            await driver.stop(
                log=ctx.log,
                force=flag(ctx, "force"),
                freeze=flag(ctx, "freeze_before_stop"),
                identified=ProcessIdentity.parse(IDENTIFIED_PROCESS.read(ctx, server.id)),
            )
        except HOST_FAILURES as error:
            await refresh_server_status(ctx, driver, server)
            raise SubtaskError(f"{driver.label}: stop failed: {error}") from None
        await VERIFIED_STATUS.publish(ctx, server.id, ServerStatus.STOPPED)

    async def rollback(self, ctx: FlowContext) -> None:
        server_id = server_id_of(ctx)
        if STOPPED_BY_TASK.read(ctx, server_id) != "true":
            ctx.log("this task did not stop the server: nothing to start again")
            return
        await _start(ctx, server_id)


class RestartStopObserverProcess(StopObserverProcess):
    class_name = "obpilot.flows.steps.RestartStopObserverProcess"


async def _start(ctx: FlowContext, server_id: int) -> None:
    driver, server = await server_driver(ctx.database, ctx.resources, server_id)
    try:
        process = await driver.start(log=ctx.log)
    except HOST_FAILURES as error:
        await refresh_server_status(ctx, driver, server)
        raise SubtaskError(f"{driver.label}: start failed: {error}") from None
    await record_server_status(
        ctx.database, server.id, ServerStatus.RUNNING, start_time=utcnow(), stop_time=None
    )
    ctx.log(f"{driver.label}: {process.describe()}")
    await VERIFIED_STATUS.publish(ctx, server.id, ServerStatus.RUNNING)  # it answered SQL


class StartObserverProcess(FlowStep):
    """Starts the process and waits until it answers SQL. Already running is success.
    Rolling back stops again a server that this task started."""

    name = "Start observer process"
    timeout = 1200
    resumable = True
    publishes = frozenset({VERIFIED_STATUS})
    takes = frozenset({STARTED_BY_TASK})

    async def execute(self, ctx: FlowContext) -> None:
        await _start(ctx, server_id_of(ctx))

    async def rollback(self, ctx: FlowContext) -> None:
        server_id = server_id_of(ctx)
        if STARTED_BY_TASK.read(ctx, server_id) != "true":
            ctx.log("this task did not start the server: nothing to stop again")
            return
        driver, server = await server_driver(ctx.database, ctx.resources, server_id)
        try:
            await driver.stop(log=ctx.log)
        except HOST_FAILURES as error:
            await refresh_server_status(ctx, driver, server)
            raise SubtaskError(f"{driver.label}: stop failed: {error}") from None
        await record_server_status(
            ctx.database, server.id, ServerStatus.STOPPED, stop_time=utcnow()
        )


class RestartStartObserverProcess(StartObserverProcess):
    """In a restart the server was running before: rolling back leaves it running."""

    class_name = "obpilot.flows.steps.RestartStartObserverProcess"
    takes = frozenset()

    async def rollback(self, ctx: FlowContext) -> None:
        ctx.log("a restarted server stays running")


class UpdateObserverStatus(FlowStep, abstract=True):
    """Records the server's status, as the host action before verified it
    (`VERIFIED_STATUS`) or else as its host reports it, and checks it is what the
    operation wanted."""

    name = "Update observer status"
    timeout = 300
    resumable = True
    takes = frozenset({VERIFIED_STATUS})
    expected: ClassVar[ServerStatus]

    async def execute(self, ctx: FlowContext) -> None:
        server_id = server_id_of(ctx)
        if VERIFIED_STATUS.read(ctx, server_id) == self.expected:
            # The step before verified it on the host moments ago; used once.
            await VERIFIED_STATUS.publish(ctx, server_id, "")
            # A start already recorded its start_time; a stop is stamped here.
            stopped = self.expected == ServerStatus.STOPPED
            times = {"stop_time": utcnow()} if stopped else {}
            await record_server_status(ctx.database, server_id, self.expected, **times)
            ctx.log(
                f"server {server_id} is {self.expected}, as verified on its host by the step before"
            )
            return
        driver, server = await server_driver(ctx.database, ctx.resources, server_id)
        status = await refresh_server_status(ctx, driver, server)
        if status == ServerStatus.STOPPED and server.status != ServerStatus.STOPPED:
            await record_server_status(ctx.database, server.id, status, stop_time=utcnow())
        if status != self.expected:
            raise SubtaskError(f"{driver.label} is {status}, expected {self.expected}")


class UpdateStoppedObserverStatus(UpdateObserverStatus):
    class_name = "obpilot.flows.steps.UpdateStoppedObserverStatus"
    expected = ServerStatus.STOPPED


class UpdateRunningObserverStatus(UpdateObserverStatus):
    class_name = "obpilot.flows.steps.UpdateRunningObserverStatus"
    expected = ServerStatus.RUNNING
