"""Status truth: compares the stored statuses of a cluster's servers with what their hosts
report, and records drift. A server that died outside obpilot becomes UNAVAILABLE; one
that runs again becomes RUNNING; zone and cluster follow from their servers.

The hosts' agents report the exit of every server process they have identified the moment
it happens (`follow_exits`): its cluster is checked at once, so a server that dies behind
obpilot's back is UNAVAILABLE within a second. The periodic check (`run`: at start, then
every interval) is the safety net, and it is also what identifies the processes to watch.

It never fights an operation: a cluster whose lock holder is acting on it
(`inventory.state.writes_cluster_statuses`) is left to that task, and the writes happen
only if no task took the lock meanwhile. Host I/O happens between two short
transactions, never inside one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from obpilot.db.engine import Database
from obpilot.flows.common import FlowResources, ServerProcess, observed_status, server_process
from obpilot.hosts.drivers import ProcessStatus
from obpilot.hosts.executor import ProcessExit
from obpilot.inventory import service as inventory
from obpilot.inventory.models import ServerStatus
from obpilot.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Drift:
    server_id: int
    stored: str
    observed: str


class Reconciler:
    def __init__(self, database: Database, resources: FlowResources) -> None:
        self.database = database
        self.resources = resources
        self._checked: dict[int, float] = {}
        #: Checks started by exit events (kept so that they are not garbage-collected).
        self._exit_checks: set[asyncio.Task[None]] = set()

    def follow_exits(self) -> None:
        """Checks a server's cluster as soon as its host's agent reports its exit."""
        self.resources.host_access.on_exit(self._server_exited)

    def _server_exited(self, host_key: Hashable, exited: ProcessExit) -> None:
        if not isinstance(host_key, int):
            return  # not a stored host (a one-off executor)
        check = asyncio.create_task(self._check_exited(host_key, exited))
        self._exit_checks.add(check)
        check.add_done_callback(self._exit_checks.discard)

    async def _check_exited(self, host_id: int, exited: ProcessExit) -> None:
        try:
            async with self.database.transaction() as session:
                servers = await inventory.servers_using(
                    session, host_id=host_id, ports=(), homes=(exited.home,)
                )
            for cluster_id in {server.cluster_id for server in servers}:
                await self.reconcile(cluster_id)
        except Exception:
            log.exception("reconcile after an exit failed", host_id=host_id, pid=exited.pid)

    async def reconcile_if_stale(self, cluster_id: int, max_age: float) -> list[Drift]:
        last = self._checked.get(cluster_id)
        if last is not None and time.monotonic() - last < max_age:
            return []
        return await self.reconcile(cluster_id)

    async def reconcile(self, cluster_id: int) -> list[Drift]:
        """Checks one cluster's servers; returns the drift it recorded."""
        async with self.database.transaction() as session:
            cluster = await inventory.find_cluster_row(session, cluster_id)
            if cluster is None or await inventory.operation_running(session, cluster):
                return []
            lock = cluster.operation_task_id
            processes = [
                await server_process(session, server, self.resources.secret_box)
                for server in await inventory.servers_of_cluster(session, cluster_id)
            ]

        async def look(process: ServerProcess) -> ProcessStatus | None:
            try:
                return await process.driver(self.resources).status()
            except Exception as error:  # an unreachable host: its servers are UNAVAILABLE
                log.warning(
                    "reconcile: cannot reach host", host_id=process.host_id, error=str(error)
                )
                return None

        looks = await asyncio.gather(*(look(process) for process in processes))
        self._checked[cluster_id] = time.monotonic()
        drift = [
            Drift(process.server.id, process.server.status, observed)
            for process, found in zip(processes, looks, strict=True)
            if (observed := _observed(found, process.server.status)) != process.server.status
        ]
        if drift:
            await self._record(cluster_id, lock, drift)
        return drift

    async def _record(self, cluster_id: int, lock: int | None, drift: Sequence[Drift]) -> None:
        async with self.database.transaction(write=True) as session:
            cluster = await inventory.find_cluster_row(session, cluster_id, for_update=True)
            if (
                cluster is None
                or cluster.operation_task_id != lock
                or await inventory.operation_running(session, cluster)
            ):
                return  # an operation started meanwhile: its view wins
            await inventory.record_server_statuses(
                session, cluster_id, {d.server_id: d.observed for d in drift}
            )
        log.warning(
            "status drift recorded",
            cluster_id=cluster_id,
            drift=[f"server {d.server_id}: {d.stored} -> {d.observed}" for d in drift],
        )

    async def reconcile_all(self) -> None:
        async with self.database.transaction() as session:
            ids = await inventory.cluster_ids(session)
        for cluster_id in ids:
            try:
                await self.reconcile(cluster_id)
            except Exception:
                log.exception("reconcile failed", cluster_id=cluster_id)

    async def run(self, interval: float) -> None:
        """The periodic check, at once and then every `interval`, until cancelled."""
        while True:
            await self.reconcile_all()
            await asyncio.sleep(interval)


def _observed(process: ProcessStatus | None, stored: str) -> str:
    if process is None:
        return ServerStatus.UNAVAILABLE
    return observed_status(process, stored)
