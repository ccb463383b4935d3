"""Builders for inventory rows that tests need."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.credentials.service import add_host
from obpilot.engine import Context, TaskInstance, TaskStatus, Template, single, submit
from obpilot.inventory import service
from obpilot.inventory.models import Cluster, Host, HostKind
from obpilot.inventory.schemas import ClusterSpec, HostCreate, ServerSpec, ZoneSpec
from tests.support.engine_tasks import Noop

#: A task that nothing runs, standing for an operation's task.
HOLD = Template(key="test.inventory.hold", name="Hold the cluster", stages=[single(Noop)])


async def add_local_host(
    session: AsyncSession, name: str = "local", *, address: str = "127.0.0.1"
) -> Host:
    """`address`: 127.0.0.1 or ::1, the two ways to name this machine."""
    return await add_host(
        session, spec=HostCreate(name=name, inner_ip_address=address, kind=HostKind.LOCAL)
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


async def add_task(
    session: AsyncSession, cluster: Cluster, status: TaskStatus = TaskStatus.RUNNING
) -> TaskInstance:
    """A task about `cluster`, in `status`, holding nothing yet."""
    task = await submit(
        session,
        HOLD,
        Context.of({"cluster_id": cluster.id}),
        creator_id=None,
        creator_name="test",
        cluster_id=cluster.id,
        cluster_name=cluster.name,
    )
    task.status = status
    await session.flush()
    return task
