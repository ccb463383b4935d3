"""Take over OB cluster: the servers of a cluster obpilot did not create are looked at on
their hosts, and the cluster is registered with what was found.

The request registered the cluster as TAKINGOVER (zones and servers UNAVAILABLE) and took
its operation lock. The task then checks every server on its host, in parallel: the
process is running (it holds the pid-file lock, runs the kind's binary from the home, and
answers SQL, which also gives its version) or stopped (nothing runs, the home holds data,
and its SQL port is free). Anything else fails the check with the host and the reason:
the pid file or home held by another program, a port answered by a process that is not
this server, a process that refuses SQL, no data at the home. Zone and cluster statuses
are then derived from the servers.

Nothing here starts, stops or signals a process. Rolling the task back forgets the rows
the request created; a successful task releases the lock."""

from __future__ import annotations

import re

from obpilot.engine import SubtaskError, parallel, single
from obpilot.flows.common import FlowContext, cluster_id_of, server_driver, server_id_of
from obpilot.flows.steps import HOST_FAILURES, FlowStep, UpdateClusterStatus, UpdateZoneStatus
from obpilot.flows.templates import cluster_template
from obpilot.hosts.drivers import ProcessState, ProcessStatus
from obpilot.inventory import service as inventory
from obpilot.inventory.models import ServerStatus

_VERSION = re.compile(r"-v(\d+(?:\.\d+)+)")


def version_number(reported: str) -> str:
    """`5.7.25-OceanBase seekdb-v1.4.0.0` -> `1.4.0.0`; `...OceanBase_CE-v4.2.1.8` ->
    `4.2.1.8`; anything else as reported."""
    match = _VERSION.search(reported)
    return match.group(1) if match else reported.strip()[:64]


class PrepareTakeOverCluster(FlowStep):
    name = "Prepare take over OB cluster"
    timeout = 30
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        cluster_id = cluster_id_of(ctx)
        async with ctx.database.transaction() as session:
            cluster = await inventory.find_cluster_row(session, cluster_id)
            if cluster is None:
                raise SubtaskError(f"OB cluster {cluster_id} is no longer registered")
        ctx.log(
            f"taking over OB cluster {cluster.name} (id {cluster.id}, obClusterId "
            f"{cluster.ob_cluster_id}): {len(ctx.get_list('server_ids'))} server(s) in zone(s) "
            f"{', '.join(ctx.get_list('zone_names'))}; no process will be started or stopped"
        )

    async def rollback(self, ctx: FlowContext) -> None:
        """Forgets the cluster this task registered (its zones and servers too); the
        processes on the hosts are not touched."""
        cluster_id = cluster_id_of(ctx)
        async with ctx.database.transaction(write=True) as session:
            cluster = await inventory.find_cluster_row(session, cluster_id, for_update=True)
            if cluster is None:
                ctx.log(f"OB cluster {cluster_id} is already forgotten")
                return
            if cluster.operation_task_id != ctx.task_id:
                raise SubtaskError(
                    f"OB cluster {cluster.name} is now held by task {cluster.operation_task_id}, "
                    "not by this takeover; it is left registered"
                )
            await inventory.forget_cluster(session, cluster_id)
        ctx.log(
            f"forgot OB cluster {cluster.name} (id {cluster_id}) with its zones and servers; "
            "no process was touched"
        )


class CheckObserverProcess(FlowStep):
    name = "Check observer process"
    description = "Check the server's process on its host: running or stopped, identity, version"
    timeout = 300
    resumable = True  # it only looks

    async def execute(self, ctx: FlowContext) -> None:
        driver, server = await server_driver(ctx.database, ctx.resources, server_id_of(ctx))
        where = f"host {server.ip}: {driver.label}"
        try:
            process = await driver.status(log=ctx.log)
        except HOST_FAILURES as error:
            raise SubtaskError(f"{where}: cannot look at the server: {error}") from None
        status, version = _found(process, where)
        for note in process.notes:
            ctx.log(f"{where}: note: {note}")
        async with ctx.database.transaction(write=True) as session:
            await inventory.set_found_server_status(session, server.id, status, version)
        ctx.log(
            f"{where}: recorded as {status}"
            + (f", version {version}" if version else "")
            + (f" (pid {process.pid})" if process.pid else "")
        )


def _found(process: ProcessStatus, where: str) -> tuple[ServerStatus, str | None]:
    """The status to record for what the host reports, or the reason it cannot be taken
    over (as SubtaskError)."""
    notes = "; ".join(process.notes)
    if process.state == ProcessState.RUNNING:
        return ServerStatus.RUNNING, version_number(process.version) if process.version else None
    if process.state == ProcessState.CONFLICT:
        raise SubtaskError(f"{where}: held by another program: {notes}")
    if process.state == ProcessState.STARTING:
        error = process.sql_error or "the SQL port is not open"
        hint = (
            "check the cluster's rootPassword"
            if "denied" in error.lower()
            else "retry once the server has finished starting"
        )
        raise SubtaskError(
            f"{where}: pid {process.pid} ({process.binary}) runs but does not answer SQL "
            f"({error}); {hint}"
        )
    if process.port_in_use or process.other_ports_in_use:
        raise SubtaskError(
            f"{where}: no process of this server runs, yet its port is in use: {notes}; "
            "that is another server (is homePath or binaryPath wrong?)"
        )
    if not process.initialised:
        raise SubtaskError(
            f"{where}: nothing to take over: no process runs and {process.home}/store holds no data"
        )
    return ServerStatus.STOPPED, None


class UpdateTakenOverClusterStatus(UpdateClusterStatus):
    """The cluster's status as its zones are (RUNNING, STOPPED or UNAVAILABLE, whatever
    was found) and its version as its servers report it."""

    class_name = "obpilot.flows.takeover.UpdateTakenOverClusterStatus"

    async def execute(self, ctx: FlowContext) -> None:
        async with ctx.database.transaction(write=True) as session:
            version = await inventory.update_cluster_version(session, cluster_id_of(ctx))
        if version is not None:
            ctx.log(f"cluster version {version}")
        await super().execute(ctx)


TAKE_OVER_CLUSTER = cluster_template(
    "ob.cluster.takeover",
    "Take over OB cluster",
    [
        single(PrepareTakeOverCluster),
        parallel(CheckObserverProcess, over="server_ids"),
        parallel(UpdateZoneStatus, over="zone_names"),
        single(UpdateTakenOverClusterStatus),
    ],
    hand_offs=[],
)
