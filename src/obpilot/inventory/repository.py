"""All inventory SQL. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from obpilot.api.pagination import PageRequest
from obpilot.inventory.models import Cluster, Host, Server, Zone

SortColumns = dict[str, InstrumentedAttribute[Any]]

CLUSTER_SORT: SortColumns = {
    "id": Cluster.id,
    "name": Cluster.name,
    "obClusterId": Cluster.ob_cluster_id,
    "status": Cluster.status,
    "createTime": Cluster.create_time,
}
HOST_SORT: SortColumns = {
    "id": Host.id,
    "name": Host.name,
    "innerIpAddress": Host.inner_ip_address,
    "status": Host.status,
    "createTime": Host.create_time,
}


async def _page(
    session: AsyncSession,
    statement: Select[Any],
    page: PageRequest,
    columns: SortColumns,
) -> tuple[list[Any], int]:
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    order = [columns[s.field].desc() if s.descending else columns[s.field].asc() for s in page.sort]
    # The primary key ends every ORDER BY so that pages are stable.
    rows = await session.scalars(
        statement.order_by(*order, columns["id"].asc()).offset(page.offset).limit(page.size)
    )
    return list(rows), int(total or 0)


def _with_zones_and_servers() -> Any:
    return selectinload(Cluster.zones).selectinload(Zone.servers)


class HostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, host_id: int) -> Host | None:
        return await self.session.get(Host, host_id)

    async def get_by_address(self, address: str, ssh_port: int) -> Host | None:
        return await self.session.scalar(
            select(Host).where(Host.inner_ip_address == address, Host.ssh_port == ssh_port)
        )

    async def get_by_name(self, name: str) -> Host | None:
        return await self.session.scalar(select(Host).where(Host.name == name))

    async def page(
        self, page: PageRequest, *, statuses: Sequence[str], keyword: str | None
    ) -> tuple[list[Host], int]:
        statement = select(Host)
        if statuses:
            statement = statement.where(Host.status.in_(statuses))
        if keyword:
            statement = statement.where(
                Host.name.icontains(keyword, autoescape=True)
                | Host.inner_ip_address.icontains(keyword, autoescape=True)
            )
        return await _page(self.session, statement, page, HOST_SORT)

    async def add(self, host: Host) -> Host:
        self.session.add(host)
        await self.session.flush()
        return host

    async def count_servers(self, host_id: int) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Server).where(Server.host_id == host_id)
        )
        return int(count or 0)

    async def delete(self, host: Host) -> None:
        await self.session.delete(host)
        await self.session.flush()


class ClusterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, cluster_id: int) -> Cluster | None:
        return await self.session.scalar(
            select(Cluster).where(Cluster.id == cluster_id).options(_with_zones_and_servers())
        )

    async def get_by_name(self, name: str) -> Cluster | None:
        return await self.session.scalar(select(Cluster).where(Cluster.name == name))

    async def page(
        self,
        page: PageRequest,
        *,
        name: str | None,
        statuses: Sequence[str],
        ids: set[int] | None = None,
    ) -> tuple[list[Cluster], int]:
        statement = select(Cluster).options(_with_zones_and_servers())
        if ids is not None:
            statement = statement.where(Cluster.id.in_(sorted(ids)))
        if name:
            statement = statement.where(Cluster.name.icontains(name, autoescape=True))
        if statuses:
            statement = statement.where(Cluster.status.in_(statuses))
        return await _page(self.session, statement, page, CLUSTER_SORT)

    async def add(self, cluster: Cluster) -> Cluster:
        self.session.add(cluster)
        await self.session.flush()
        return cluster

    async def add_zone(self, zone: Zone) -> Zone:
        self.session.add(zone)
        await self.session.flush()
        return zone

    async def add_server(self, server: Server) -> Server:
        self.session.add(server)
        await self.session.flush()
        return server
