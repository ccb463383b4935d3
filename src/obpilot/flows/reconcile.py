"""Status truth: compares the stored statuses of a cluster's servers with what their hosts
report, and records drift. A server that died outside obpilot becomes UNAVAILABLE; one
that runs again becomes RUNNING; zone and cluster follow from their servers.

It never fights an operation: a cluster whose lock is held by a RUNNING task is left to
that task, and the writes happen only if no task took the lock meanwhile. Host I/O
happens between two short transactions, never inside one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.credentials.service import host_target
from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import TaskInstance, TaskStatus
from obpilot.flows.common import (
    FlowResources,
    cluster_status_from,
    observed_status,
    process_spec,
    zone_status_from,
)
from obpilot.hosts.access import HostTarget
from obpilot.hosts.drivers import ProcessSpec, ProcessStatus, ProcessTimeouts, driver_for
from obpilot.inventory.models import Cluster, Host, Server, ServerStatus, Zone
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

    async def reconcile_if_stale(self, cluster_id: int, max_age: float) -> list[Drift]:
        last = self._checked.get(cluster_id)
        if last is not None and time.monotonic() - last < max_age:
            return []
        return await self.reconcile(cluster_id)

    async def reconcile(self, cluster_id: int) -> list[Drift]:
        """Checks one cluster's servers; returns the drift it recorded."""
        async with self.database.transaction() as session:
            cluster = await session.get(Cluster, cluster_id)
            if cluster is None or await _busy(session, cluster):
                return []
            lock = cluster.operation_task_id
            servers = list(
                await session.scalars(select(Server).where(Server.cluster_id == cluster_id))
            )
            plans = []
            for server in servers:
                host = await session.get_one(Host, server.host_id)
                spec = await process_spec(session, server, self.resources.secret_box)
                target = await host_target(session, host=host, secret_box=self.resources.secret_box)
                plans.append((server.id, server.status, host.id, spec, target))
        timeouts = ProcessTimeouts.from_settings(self.resources.settings)

        async def look(host_id: int, spec: ProcessSpec, target: HostTarget) -> ProcessStatus | None:
            executor = self.resources.host_access.executor(host_id, target)
            try:
                return await driver_for(spec, executor, timeouts).status()
            except Exception as error:  # an unreachable host: its servers are UNAVAILABLE
                log.warning("reconcile: cannot reach host", host_id=host_id, error=str(error))
                return None

        looks = await asyncio.gather(*(look(h, spec, t) for _, _, h, spec, t in plans))
        self._checked[cluster_id] = time.monotonic()
        drift = [
            Drift(server_id, stored, observed)
            for (server_id, stored, *_), process in zip(plans, looks, strict=True)
            if (observed := _observed(process, stored)) != stored
        ]
        if drift:
            await self._record(cluster_id, lock, drift)
        return drift

    async def _record(self, cluster_id: int, lock: int | None, drift: Sequence[Drift]) -> None:
        async with self.database.transaction(write=True) as session:
            cluster = await session.get(Cluster, cluster_id, with_for_update=True)
            if (
                cluster is None
                or cluster.operation_task_id != lock
                or await _busy(session, cluster)
            ):
                return  # an operation started meanwhile: its view wins
            now = utcnow()
            changed = {d.server_id: d.observed for d in drift}
            zones = list(await session.scalars(select(Zone).where(Zone.cluster_id == cluster_id)))
            for server in await session.scalars(
                select(Server).where(Server.cluster_id == cluster_id)
            ):
                if server.id in changed:
                    server.status = changed[server.id]
                    server.update_time = now
            await session.flush()
            for zone in zones:
                statuses = list(
                    await session.scalars(select(Server.status).where(Server.zone_id == zone.id))
                )
                zone.status = zone_status_from(statuses)
                zone.update_time = now
            cluster.status = cluster_status_from([zone.status for zone in zones])
            cluster.update_time = now
        log.warning(
            "status drift recorded",
            cluster_id=cluster_id,
            drift=[f"server {d.server_id}: {d.stored} -> {d.observed}" for d in drift],
        )

    async def reconcile_all(self) -> None:
        async with self.database.transaction() as session:
            ids = list(await session.scalars(select(Cluster.id)))
        for cluster_id in ids:
            try:
                await self.reconcile(cluster_id)
            except Exception:
                log.exception("reconcile failed", cluster_id=cluster_id)

    async def run(self, interval: float) -> None:
        """The periodic check, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.reconcile_all()


async def _busy(session: AsyncSession, cluster: Cluster) -> bool:
    if cluster.operation_task_id is None:
        return False
    holder = await session.get(TaskInstance, cluster.operation_task_id)
    return holder is not None and holder.status == TaskStatus.RUNNING


def _observed(process: ProcessStatus | None, stored: str) -> str:
    if process is None:
        return ServerStatus.UNAVAILABLE
    return observed_status(process, stored)
