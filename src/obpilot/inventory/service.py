"""Inventory rules: what may be created, deleted and read, and how a cluster is registered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.api.pagination import PageRequest
from obpilot.credentials import service as credentials_service
from obpilot.errors import (
    BadRequest,
    ClusterNotFound,
    DuplicateName,
    HostAlreadyExists,
    HostInUse,
    HostNotFound,
    ZoneNotFound,
)
from obpilot.inventory.models import (
    Cluster,
    Host,
    HostKind,
    Server,
    Zone,
)
from obpilot.inventory.repository import ClusterRepository, HostRepository
from obpilot.inventory.schemas import ClusterSpec, HostCreate
from obpilot.secretbox import SecretBox

if TYPE_CHECKING:
    from obpilot.hosts.access import HostAccess


async def list_hosts(
    session: AsyncSession, *, page: PageRequest, statuses: Sequence[str], keyword: str | None
) -> tuple[list[Host], int]:
    return await HostRepository(session).page(page, statuses=statuses, keyword=keyword)


async def get_host(session: AsyncSession, *, host_id: int) -> Host:
    host = await HostRepository(session).get(host_id)
    if host is None:
        raise HostNotFound(host_id)
    return host


async def create_host(
    session: AsyncSession,
    *,
    spec: HostCreate,
    host_access: HostAccess | None = None,
    secret_box: SecretBox | None = None,
) -> Host:
    """Adds a host. Any kind but LOCAL is reached over SSH: obpilot logs in once with the
    given credential (which proves address, port, credential and a usable python3) and
    records the host key, which every later connection must present."""
    hosts = HostRepository(session)
    if spec.kind == HostKind.LOCAL and spec.inner_ip_address not in ("127.0.0.1", "::1"):
        raise BadRequest("A LOCAL host is this machine: its innerIpAddress must be 127.0.0.1")
    if await hosts.get_by_address(spec.inner_ip_address, spec.ssh_port) is not None:
        raise HostAlreadyExists(spec.inner_ip_address, spec.ssh_port)
    name = spec.name or f"{spec.inner_ip_address}:{spec.ssh_port}"
    if await hosts.get_by_name(name) is not None:
        raise DuplicateName(f"A host named {name!r} already exists")
    host_key = None
    if spec.kind == HostKind.LOCAL:
        if spec.credential_id is not None:
            await credentials_service.get_credential(session, credential_id=spec.credential_id)
    else:
        if host_access is None or secret_box is None:
            raise RuntimeError("adding an SSH host needs the host access pool and secret box")
        target = await credentials_service.ssh_target(
            session,
            address=spec.inner_ip_address,
            ssh_port=spec.ssh_port,
            credential_id=spec.credential_id,
            host_key=None,
            secret_box=secret_box,
        )
        # One bounded SSH login (ssh_connect_timeout); nothing has been written yet.
        host_key = await host_access.record_host_key(target, step=f"add host {name}")
    return await hosts.add(
        Host(
            name=name,
            alias=spec.alias,
            inner_ip_address=spec.inner_ip_address,
            ssh_port=spec.ssh_port,
            kind=spec.kind,
            credential_id=spec.credential_id,
            description=spec.description,
            host_key=host_key,
        )
    )


async def delete_host(session: AsyncSession, *, host_id: int) -> None:
    hosts = HostRepository(session)
    host = await get_host(session, host_id=host_id)
    servers = await hosts.count_servers(host_id)
    if servers:
        raise HostInUse(
            f"Host {host.name} still runs {servers} OB server(s); remove them from obpilot first"
        )
    await hosts.delete(host)


async def list_clusters(
    session: AsyncSession,
    *,
    page: PageRequest,
    name: str | None,
    statuses: Sequence[str],
    ids: set[int] | None = None,
) -> tuple[list[Cluster], int]:
    """`ids`: only these clusters (what the caller may read); None: all."""
    return await ClusterRepository(session).page(page, name=name, statuses=statuses, ids=ids)


async def get_cluster(session: AsyncSession, *, cluster_id: int) -> Cluster:
    cluster = await ClusterRepository(session).get(cluster_id)
    if cluster is None:
        raise ClusterNotFound(cluster_id)
    return cluster


async def get_zone(session: AsyncSession, *, cluster_id: int, zone_name: str) -> Zone:
    cluster = await get_cluster(session, cluster_id=cluster_id)
    for zone in cluster.zones:
        if zone.name == zone_name:
            return zone
    raise ZoneNotFound(cluster_id, zone_name)


async def register_cluster(session: AsyncSession, *, spec: ClusterSpec) -> Cluster:
    """Records a cluster whose servers were already checked on their hosts."""
    clusters = ClusterRepository(session)
    hosts = HostRepository(session)
    if await clusters.get_by_name(spec.name) is not None:
        raise DuplicateName(f"An OB cluster named {spec.name!r} already exists")
    zone_names = [zone.name for zone in spec.zones]
    if len(set(zone_names)) != len(zone_names):
        raise BadRequest(f"Zone names must be unique within a cluster: {zone_names}")
    cluster = await clusters.add(
        Cluster(
            name=spec.name,
            ob_cluster_id=spec.ob_cluster_id,
            ob_version=spec.ob_version,
            status=spec.status,
            creator=spec.creator,
        )
    )
    for zone_spec in spec.zones:
        zone = await clusters.add_zone(
            Zone(
                cluster_id=cluster.id,
                name=zone_spec.name,
                idc_name=zone_spec.idc_name,
                region_name=zone_spec.region_name,
                status=zone_spec.status,
            )
        )
        for server_spec in zone_spec.servers:
            host = await hosts.get(server_spec.host_id)
            if host is None:
                raise HostNotFound(server_spec.host_id)
            await clusters.add_server(
                Server(
                    cluster_id=cluster.id,
                    zone_id=zone.id,
                    host_id=host.id,
                    kind=server_spec.kind,
                    ip=host.inner_ip_address,
                    port=server_spec.rpc_port,
                    sql_port=server_spec.sql_port,
                    home_path=server_spec.home_path,
                    binary_path=server_spec.binary_path,
                    parameters=dict(server_spec.parameters) or None,
                    version=server_spec.version,
                    status=server_spec.status,
                )
            )
    return await get_cluster(session, cluster_id=cluster.id)
