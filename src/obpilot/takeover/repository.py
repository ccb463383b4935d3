"""The SQL of taking clusters over and forgetting them. Never commits."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.inventory.models import Cluster, Host, Server, Zone


async def hosts_by_id(session: AsyncSession, host_ids: Collection[int]) -> dict[int, Host]:
    rows = await session.scalars(select(Host).where(Host.id.in_(list(host_ids))))
    return {host.id: host for host in rows}


async def servers_on(
    session: AsyncSession, host_id: int, ports: Collection[int], homes: Collection[str]
) -> list[Server]:
    """Registered servers on `host_id` that use one of `ports` (SQL or RPC) or `homes`."""
    port_list, home_list = list(ports), list(homes)
    rows = await session.scalars(
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


async def cluster_names(session: AsyncSession, cluster_ids: Collection[int]) -> dict[int, str]:
    rows = await session.execute(
        select(Cluster.id, Cluster.name).where(Cluster.id.in_(list(cluster_ids)))
    )
    return {cluster_id: name for cluster_id, name in rows.all()}


async def forget_cluster(session: AsyncSession, cluster_id: int) -> None:
    """Deletes the cluster's rows (servers, zones, cluster); nothing on any host."""
    await session.execute(delete(Server).where(Server.cluster_id == cluster_id))
    await session.execute(delete(Zone).where(Zone.cluster_id == cluster_id))
    await session.execute(delete(Cluster).where(Cluster.id == cluster_id))
