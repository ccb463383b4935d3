"""Taking servers off their hosts: the steps that delete a cluster, a zone or servers.

Nothing is removed that obpilot cannot prove it made: the prepare step reads every
directory's ownership marker and fails, with nothing touched, when one does not name this
cluster. "Clean observer host" renames each directory to `<dir>.deleted-<taskId>` (the
paths are free at once, and a rollback renames them back); with `purge` it removes them."""

from __future__ import annotations

import asyncio

from obpilot.engine import SubtaskError
from obpilot.flows.common import (
    FlowContext,
    cluster_id_of,
    flag,
    record_server_status,
    server_id_of,
)
from obpilot.flows.install import NewServer, new_server, server_dirs, task_servers
from obpilot.flows.steps import (
    HOST_FAILURES,
    IDENTIFIED_PROCESS,
    STOPPED_BY_TASK,
    FlowStep,
)
from obpilot.hosts.drivers.process import ProcessState
from obpilot.hosts.protocol import (
    MOVE_ASIDE,
    MOVE_BACK,
    OWNERS,
    MoveAsideRequest,
    MoveBackRequest,
    PathsRequest,
)
from obpilot.inventory import service as inventory
from obpilot.inventory.models import ClusterStatus, ServerStatus


def aside_suffix(ctx: FlowContext) -> str:
    return f".deleted-{ctx.task_id}"


class PrepareRemoval(FlowStep, abstract=True):
    """Checks every directory of the servers to remove carries this cluster's marker
    (unless `keep_data`: then no file is touched), looks at each server's process, and
    marks them DELETING. Rolling back gives them back the status their process shows."""

    timeout = 300
    resumable = True
    publishes = frozenset({STOPPED_BY_TASK, IDENTIFIED_PROCESS})

    async def execute(self, ctx: FlowContext) -> None:
        await self.mark(ctx)
        servers = [await new_server(ctx, server_id) for server_id in task_servers(ctx)]
        if not flag(ctx, "keep_data"):
            problems = await asyncio.gather(*(self._markers(ctx, this) for this in servers))
            found = [problem for found in problems for problem in found]
            if found:
                raise SubtaskError(
                    "obpilot removes only directories it made for this cluster; nothing was "
                    "touched: " + "; ".join(found)
                )
        for this in servers:
            try:
                process = await this.driver.status(log=ctx.log)
            except HOST_FAILURES as error:
                raise SubtaskError(f"{this.driver.label}: cannot read its state: {error}") from None
            if process.state == ProcessState.CONFLICT:
                raise SubtaskError(f"{this.driver.label}: {process.describe()}")
            if process.state != ProcessState.STOPPED:
                await STOPPED_BY_TASK.publish(ctx, this.server.id, "true")
            if process.identity is not None:
                await IDENTIFIED_PROCESS.publish(ctx, this.server.id, process.identity.text())
            await record_server_status(ctx.database, this.server.id, ServerStatus.DELETING)

    async def mark(self, ctx: FlowContext) -> None:
        return None

    async def _markers(self, ctx: FlowContext, this: NewServer) -> list[str]:
        dirs = server_dirs(this.server.home_path, this.server.data_path)
        request: PathsRequest = {"paths": dirs}
        answer = await this.driver.ask_agent(OWNERS, request, step="read the directory markers")
        problems = []
        for path in dirs:
            marker = answer["markers"].get(path)
            if not answer["exists"].get(path):
                continue  # nothing there to remove
            if marker is None:
                problems.append(f"{this.driver.label}: {path} has no obpilot marker")
            elif marker["cluster_id"] != this.server.cluster_id:
                problems.append(
                    f"{this.driver.label}: {path} belongs to cluster {marker['cluster']} "
                    f"(id {marker['cluster_id']})"
                )
        return problems

    async def rollback(self, ctx: FlowContext) -> None:
        for server_id in task_servers(ctx):
            this = await new_server(ctx, server_id)
            process = await this.driver.status(log=ctx.log)
            status = ServerStatus.RUNNING if process.running else ServerStatus.STOPPED
            await record_server_status(ctx.database, server_id, status)


class PrepareDeleteCluster(PrepareRemoval):
    name = "Prepare delete cluster"

    async def mark(self, ctx: FlowContext) -> None:
        async with ctx.database.transaction(write=True) as session:
            await inventory.set_cluster_status(session, cluster_id_of(ctx), ClusterStatus.DELETING)

    async def rollback(self, ctx: FlowContext) -> None:
        await super().rollback(ctx)
        async with ctx.database.transaction(write=True) as session:
            status = await inventory.update_cluster_status(session, cluster_id_of(ctx))
        ctx.log(f"cluster {ctx.get('cluster_name')} is {status} again")


class PrepareDeleteZone(PrepareRemoval):
    name = "Prepare delete OB zone"


class PrepareDeleteObserver(PrepareRemoval):
    name = "Prepare delete observer"


class CleanObserverHost(FlowStep):
    """Moves the server's directories aside (`<dir>.deleted-<taskId>`), or removes them
    with `purge`. Rolling back moves them back (not possible after a purge)."""

    name = "Clean observer host"
    timeout = 1800
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        request: MoveAsideRequest = {
            "paths": server_dirs(this.server.home_path, this.server.data_path),
            "cluster_id": this.server.cluster_id,
            "suffix": aside_suffix(ctx),
            "purge": flag(ctx, "purge"),
        }
        answer = await this.driver.ask_agent(MOVE_ASIDE, request, step="clean", wait=600)
        verb = "removed" if request["purge"] else f"moved to <dir>{request['suffix']}"
        for path in answer["changed"]:
            ctx.log(f"{this.driver.label}: {path} {verb}")
        # Already moved or missing: an earlier run of this step got there first.
        refused = {
            path: why
            for path, why in answer["skipped"].items()
            if why not in ("already moved", "missing")
        }
        if refused:
            raise SubtaskError(
                f"{this.driver.label}: "
                + "; ".join(f"{path} left alone: {why}" for path, why in refused.items())
            )

    async def rollback(self, ctx: FlowContext) -> None:
        if flag(ctx, "purge"):
            ctx.log("the directories were removed (purge): nothing to move back")
            return
        this = await new_server(ctx, server_id_of(ctx))
        request: MoveBackRequest = {
            "paths": server_dirs(this.server.home_path, this.server.data_path),
            "suffix": aside_suffix(ctx),
        }
        answer = await this.driver.ask_agent(MOVE_BACK, request, step="move the directories back")
        for path in answer["changed"]:
            ctx.log(f"{this.driver.label}: {path} moved back")
        for path, why in answer["skipped"].items():
            ctx.log(f"{this.driver.label}: {path} not moved back: {why}")


class DeleteClusterInfo(FlowStep):
    """Forgets the cluster, its zones and servers. After this a GET of the cluster is a
    404; the task stays in the task center."""

    name = "Delete cluster info"
    timeout = 60
    resumable = True
    rollbackable = False

    async def execute(self, ctx: FlowContext) -> None:
        async with ctx.database.transaction(write=True) as session:
            await inventory.forget_cluster(session, cluster_id_of(ctx))
        ctx.log(f"cluster {ctx.get('cluster_name')} (id {cluster_id_of(ctx)}) deleted")


class DeleteObserverMetaInfo(FlowStep):
    """Forgets the removed servers (and their zone when it is left empty)."""

    name = "Delete observer meta info"
    timeout = 60
    resumable = True
    rollbackable = False

    async def execute(self, ctx: FlowContext) -> None:
        ids = task_servers(ctx)
        async with ctx.database.transaction(write=True) as session:
            await inventory.remove_servers(session, ids)
        ctx.log(f"servers {ids} deleted from the cluster")


class DeleteZoneMetaInfo(DeleteObserverMetaInfo):
    name = "Delete zone meta info"


class UnreserveHost(FlowStep):
    """The hosts that no server uses any more are AVAILABLE again (OCP's step)."""

    name = "Unreserve host"
    timeout = 60
    resumable = True
    rollbackable = False

    async def execute(self, ctx: FlowContext) -> None:
        host_ids = [int(value) for value in ctx.get_list("host_ids")]
        async with ctx.database.transaction(write=True) as session:
            freed = await inventory.free_hosts(session, host_ids)
        ctx.log(f"hosts {freed} are AVAILABLE again" if freed else "every host stays in use")
