"""All SQL on the inventory's tables (hosts, clusters, zones, servers), the cluster
operation lock included. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import CursorResult, Select, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from obpilot.db.base import utcnow
from obpilot.engine import TaskInstance
from obpilot.inventory.models import Cluster, Host, HostStatus, Server, Zone
from obpilot.paging import PageRequest

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

    async def by_ids(self, host_ids: Collection[int]) -> dict[int, Host]:
        rows = await self.session.scalars(select(Host).where(Host.id.in_(list(host_ids))))
        return {host.id: host for host in rows}

    async def names_using_credential(self, credential_id: int) -> list[str]:
        rows = await self.session.scalars(
            select(Host.name).where(Host.credential_id == credential_id).order_by(Host.id)
        )
        return list(rows)

    async def page(
        self,
        page: PageRequest,
        *,
        statuses: Sequence[str],
        idc_ids: Sequence[int],
        keyword: str | None,
    ) -> tuple[list[Host], int]:
        statement = select(Host)
        if statuses:
            statement = statement.where(Host.status.in_(statuses))
        if idc_ids:
            statement = statement.where(Host.idc_id.in_(idc_ids))
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

    async def servers_on(self, host_ids: Collection[int]) -> list[tuple[Server, str]]:
        """The servers on these hosts, each with its cluster's name."""
        rows = await self.session.execute(
            select(Server, Cluster.name)
            .join(Cluster, Cluster.id == Server.cluster_id)
            .where(Server.host_id.in_(list(host_ids)))
            .order_by(Server.id)
        )
        return [(server, cluster_name) for server, cluster_name in rows]

    async def pin_host_key(self, host_id: int, host_key: str) -> None:
        """Records the host key of a host that has none yet (a second writer changes
        nothing: the first key stays)."""
        await self.session.execute(
            update(Host)
            .where(Host.id == host_id, Host.host_key.is_(None))
            .values(host_key=host_key, update_time=utcnow())
        )

    async def set_system(self, host_id: int, *, operating_system: str, architecture: str) -> None:
        await self.session.execute(
            update(Host)
            .where(Host.id == host_id)
            .values(
                operating_system=operating_system, architecture=architecture, update_time=utcnow()
            )
        )

    async def set_status(self, host_id: int, status: HostStatus) -> None:
        await self.session.execute(
            update(Host).where(Host.id == host_id).values(status=status, update_time=utcnow())
        )

    async def move_statuses(
        self, host_ids: Collection[int], *, from_status: HostStatus, to_status: HostStatus
    ) -> None:
        await self.session.execute(
            update(Host)
            .where(Host.id.in_(list(host_ids)), Host.status == from_status)
            .values(status=to_status, update_time=utcnow())
        )

    async def used(self, host_ids: Collection[int], *, ignoring: Collection[int]) -> set[int]:
        """Those of `host_ids` that some server runs on, not counting the servers `ignoring`."""
        query = select(Server.host_id).where(Server.host_id.in_(list(host_ids)))
        if ignoring:
            query = query.where(Server.id.not_in(list(ignoring)))
        return set(await self.session.scalars(query.distinct()))

    async def delete(self, host: Host) -> None:
        await self.session.delete(host)
        await self.session.flush()


class ClusterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, cluster_id: int) -> Cluster | None:
        """The cluster with its zones and servers loaded."""
        return await self.session.scalar(
            select(Cluster).where(Cluster.id == cluster_id).options(_with_zones_and_servers())
        )

    async def get_locked(self, cluster_id: int) -> Cluster | None:
        """The cluster with its zones and servers loaded, its row locked (FOR UPDATE;
        SQLite serialises writers) until the transaction ends."""
        return await self.session.scalar(
            select(Cluster)
            .where(Cluster.id == cluster_id)
            .options(_with_zones_and_servers())
            .with_for_update(of=Cluster)
        )

    async def get_row(self, cluster_id: int, *, for_update: bool = False) -> Cluster | None:
        """The cluster's row alone (zones and servers not loaded)."""
        return await self.session.get(Cluster, cluster_id, with_for_update=for_update)

    async def get_by_name(self, name: str) -> Cluster | None:
        return await self.session.scalar(select(Cluster).where(Cluster.name == name))

    async def ids(self) -> list[int]:
        return list(await self.session.scalars(select(Cluster.id)))

    async def names(self, cluster_ids: Collection[int]) -> dict[int, str]:
        rows = await self.session.execute(
            select(Cluster.id, Cluster.name).where(Cluster.id.in_(list(cluster_ids)))
        )
        return {cluster_id: name for cluster_id, name in rows.all()}

    async def page(
        self,
        page: PageRequest,
        *,
        name: str | None,
        statuses: Sequence[str],
        ids: Collection[int] | None = None,
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

    async def set_status(self, cluster_id: int, status: str) -> None:
        await self.session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id)
            .values(status=status, update_time=utcnow())
        )

    async def set_version(self, cluster_id: int, version: str) -> None:
        await self.session.execute(
            update(Cluster).where(Cluster.id == cluster_id).values(ob_version=version)
        )

    async def set_full_version(self, cluster_id: int, full_version: str) -> None:
        await self.session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id, Cluster.full_version.is_(None))
            .values(full_version=full_version)
        )

    async def get_by_client_token(self, creator: str, client_token: str) -> Cluster | None:
        return await self.session.scalar(
            select(Cluster).where(Cluster.creator == creator, Cluster.client_token == client_token)
        )

    async def find_zone(self, cluster_id: int, name: str) -> Zone | None:
        return await self.session.scalar(
            select(Zone).where(Zone.cluster_id == cluster_id, Zone.name == name)
        )

    async def remove_servers(self, server_ids: Collection[int]) -> None:
        """Deletes servers' rows, then the rows of the zones they leave empty."""
        ids = list(server_ids)
        zone_ids = set(await self.session.scalars(select(Server.zone_id).where(Server.id.in_(ids))))
        await self.session.execute(delete(Server).where(Server.id.in_(ids)))
        for zone_id in zone_ids:
            left = await self.session.scalar(
                select(func.count()).select_from(Server).where(Server.zone_id == zone_id)
            )
            if not left:
                await self.session.execute(delete(Zone).where(Zone.id == zone_id))

    async def forget(self, cluster_id: int) -> None:
        """Deletes the cluster's rows (servers, zones, cluster); nothing on any host."""
        await self.session.execute(delete(Server).where(Server.cluster_id == cluster_id))
        await self.session.execute(delete(Zone).where(Zone.cluster_id == cluster_id))
        await self.session.execute(delete(Cluster).where(Cluster.id == cluster_id))

    # -- the operation lock: `Cluster.operation_task_id`, the task holding it

    async def lock_holder(self, cluster: Cluster) -> TaskInstance | None:
        if cluster.operation_task_id is None:
            return None
        return await self.session.get(TaskInstance, cluster.operation_task_id)

    async def take_lock(self, cluster_id: int, *, held_by: int | None, task_id: int) -> bool:
        """Gives the lock to `task_id` if `held_by` (None: nobody) still holds it: one
        conditional UPDATE whose row count says whether it did."""
        held = (
            Cluster.operation_task_id.is_(None)
            if held_by is None
            else Cluster.operation_task_id == held_by
        )
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            update(Cluster)
            .where(Cluster.id == cluster_id, held)
            .values(operation_task_id=task_id)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def release_lock(self, cluster_id: int, task_id: int) -> None:
        """Frees the lock if `task_id` still holds it."""
        await self.session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id, Cluster.operation_task_id == task_id)
            .values(operation_task_id=None)
        )


class ZoneRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, cluster_id: int, name: str) -> Zone | None:
        return await self.session.scalar(
            select(Zone).where(Zone.cluster_id == cluster_id, Zone.name == name)
        )

    async def of_cluster(self, cluster_id: int) -> list[Zone]:
        return list(await self.session.scalars(select(Zone).where(Zone.cluster_id == cluster_id)))

    async def statuses(self, cluster_id: int) -> list[str]:
        return list(
            await self.session.scalars(select(Zone.status).where(Zone.cluster_id == cluster_id))
        )

    async def set_status(self, cluster_id: int, name: str, status: str) -> None:
        await self.session.execute(
            update(Zone)
            .where(Zone.cluster_id == cluster_id, Zone.name == name)
            .values(status=status, update_time=utcnow())
        )


class ServerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, server_id: int) -> Server | None:
        return await self.session.get(Server, server_id)

    async def on_host(self, host_id: int) -> list[Server]:
        return list(await self.session.scalars(select(Server).where(Server.host_id == host_id)))

    async def zone_and_cluster(self, server: Server) -> tuple[Zone, Cluster]:
        zone = await self.session.get_one(Zone, server.zone_id)
        return zone, await self.session.get_one(Cluster, server.cluster_id)

    async def of_cluster(self, cluster_id: int) -> list[Server]:
        return list(
            await self.session.scalars(select(Server).where(Server.cluster_id == cluster_id))
        )

    async def statuses_in_zone(self, zone_id: int) -> list[str]:
        return list(
            await self.session.scalars(select(Server.status).where(Server.zone_id == zone_id))
        )

    async def versions(self, cluster_id: int) -> list[str | None]:
        return list(
            await self.session.scalars(
                select(Server.version).where(Server.cluster_id == cluster_id)
            )
        )

    async def using(
        self, host_id: int, ports: Collection[int], homes: Collection[str]
    ) -> list[Server]:
        """Servers on `host_id` that use one of `ports` (SQL or RPC) or `homes`."""
        port_list, home_list = list(ports), list(homes)
        rows = await self.session.scalars(
            select(Server).where(
                Server.host_id == host_id,
                or_(
                    Server.sql_port.in_(port_list),
                    Server.port.in_(port_list),
                    Server.home_path.in_(home_list),
                ),
            )
        )
        return list(rows)

    async def set_status(self, server_id: int, status: str, **values: Any) -> None:
        """`values`: other columns changed with the status (start_time, stop_time, version)."""
        await self.session.execute(
            update(Server)
            .where(Server.id == server_id)
            .values(status=status, update_time=utcnow(), **values)
        )


async def servers_using_package(session: AsyncSession, package_id: int) -> list[tuple[Server, str]]:
    """The servers installed from a software package, each with its cluster's name."""
    rows = await session.execute(
        select(Server, Cluster.name)
        .join(Cluster, Cluster.id == Server.cluster_id)
        .where(Server.package_id == package_id)
        .order_by(Server.id)
    )
    return [(server, cluster_name) for server, cluster_name in rows]
