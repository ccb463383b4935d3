"""Builders for inventory rows that tests need."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.inventory import service
from obpilot.inventory.models import Cluster, Host, HostKind
from obpilot.inventory.schemas import ClusterSpec, HostCreate, ServerSpec, ZoneSpec


async def add_local_host(session: AsyncSession, name: str = "local") -> Host:
    return await service.create_host(
        session,
        spec=HostCreate(name=name, inner_ip_address="127.0.0.1", kind=HostKind.LOCAL),
    )


async def add_cluster(
    session: AsyncSession,
    host: Host,
    *,
    name: str = "ob1",
    zones: int = 3,
    servers_per_zone: int = 1,
    status: str = "RUNNING",
    first_port: int = 30000,
) -> Cluster:
    port = first_port
    zone_specs = []
    for z in range(1, zones + 1):
        servers = []
        for _ in range(servers_per_zone):
            servers.append(
                ServerSpec(
                    host_id=host.id,
                    sql_port=port,
                    home_path=f"/tmp/{name}/{port}",
                    status="RUNNING" if status == "RUNNING" else "STOPPED",
                )
            )
            port += 1
        zone_specs.append(
            ZoneSpec.model_validate(
                {
                    "name": f"zone{z}",
                    "regionName": "local",
                    "idcName": f"idc{z}",
                    "status": "RUNNING" if status == "RUNNING" else "STOPPED",
                    "servers": servers,
                }
            )
        )
    spec = ClusterSpec.model_validate(
        {"name": name, "obClusterId": 100, "status": status, "zones": zone_specs}
    )
    return await service.register_cluster(session, spec=spec)
