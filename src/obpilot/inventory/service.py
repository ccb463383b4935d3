"""Inventory rules applied: what may be created, deleted and read, how a cluster is
registered and forgotten, the cluster operation lock, and the statuses that operations and
the reconciler record. The only writer of the hosts, clusters, zones and servers tables.

The lock: a task is created in the transaction that takes its cluster's lock. The cluster
row is locked first (`idle_cluster`: FOR UPDATE; SQLite serialises writers) and its holder
checked (`state.keeps_cluster_busy`), then `take_operation_lock` moves the lock with a
conditional UPDATE whose row count is checked. Two concurrent requests therefore give one
task and one 409 that names it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.compute import service as compute
from obpilot.compute.service import HostCatalog
from obpilot.errors import (
    BadRequest,
    ClusterBusy,
    ClusterNotFound,
    DuplicateName,
    HostAlreadyExists,
    HostInUse,
    HostNotFound,
    ZoneNotFound,
)
from obpilot.hosts.drivers import ProcessSpec
from obpilot.iam import service as iam
from obpilot.inventory import repository, state
from obpilot.inventory.models import (
    Cluster,
    ClusterStatus,
    Host,
    HostKind,
    HostStatus,
    Server,
    Zone,
    ZoneStatus,
)
from obpilot.inventory.repository import (
    ClusterRepository,
    HostRepository,
    ServerRepository,
    ZoneRepository,
)
from obpilot.inventory.schemas import ClusterSpec, HostCreate, ZoneSpec
from obpilot.paging import PageRequest
from obpilot.secretbox import SecretBox

# ------------------------------------------------------------------ hosts


async def list_hosts(
    session: AsyncSession,
    *,
    page: PageRequest,
    statuses: Sequence[str],
    idc_ids: Sequence[int] = (),
    keyword: str | None,
) -> tuple[list[Host], int]:
    return await HostRepository(session).page(
        page, statuses=statuses, idc_ids=idc_ids, keyword=keyword
    )


async def get_host(session: AsyncSession, *, host_id: int) -> Host:
    host = await HostRepository(session).get(host_id)
    if host is None:
        raise HostNotFound(host_id)
    return host


async def hosts_by_id(session: AsyncSession, host_ids: Collection[int]) -> dict[int, Host]:
    return await HostRepository(session).by_ids(host_ids)


async def host_catalog(session: AsyncSession, hosts: Collection[Host]) -> HostCatalog:
    """The IDCs, regions and host types that `hosts` name (for their output)."""
    return await compute.host_catalog(
        session,
        idc_ids={host.idc_id for host in hosts if host.idc_id is not None},
        type_ids={host.type_id for host in hosts if host.type_id is not None},
    )


async def host_names_using_credential(session: AsyncSession, credential_id: int) -> list[str]:
    return await HostRepository(session).names_using_credential(credential_id)


async def check_new_host(session: AsyncSession, spec: HostCreate) -> str:
    """The new host's name, once its address and name are free (and a LOCAL host's address
    is this machine's), and its IDC and type exist."""
    hosts = HostRepository(session)
    if spec.kind == HostKind.LOCAL and spec.inner_ip_address not in ("127.0.0.1", "::1"):
        raise BadRequest("A LOCAL host is this machine: its innerIpAddress must be 127.0.0.1")
    await compute.check_placement(session, idc_id=spec.idc_id, type_id=spec.type_id)
    if await hosts.get_by_address(spec.inner_ip_address, spec.ssh_port) is not None:
        raise HostAlreadyExists(spec.inner_ip_address, spec.ssh_port)
    name = spec.name or f"{spec.inner_ip_address}:{spec.ssh_port}"
    if await hosts.get_by_name(name) is not None:
        raise DuplicateName(f"A host named {name!r} already exists")
    return name


async def create_host(
    session: AsyncSession,
    *,
    spec: HostCreate,
    host_key: str | None,
    status: HostStatus = HostStatus.AVAILABLE,
) -> Host:
    """Records a host, with the SSH host key that later connections must present (None for
    a LOCAL host, or for a NEW host of a batch, whose first login records it). Checks again
    what `check_new_host` checked: the credentials domain logs in to a new SSH host between
    the two, outside any transaction, and another request may have taken the address or the
    name meanwhile."""
    name = await check_new_host(session, spec)
    return await HostRepository(session).add(
        Host(
            name=name,
            alias=spec.alias,
            inner_ip_address=spec.inner_ip_address,
            ssh_port=spec.ssh_port,
            kind=spec.kind,
            credential_id=spec.credential_id,
            description=spec.description,
            host_key=host_key,
            idc_id=spec.idc_id,
            type_id=spec.type_id,
            status=status,
        )
    )


async def pin_host_key(session: AsyncSession, host_id: int, host_key: str) -> str:
    """Records the host key that a host added without one (a batch's) offered on its first
    login, and returns the key now on record: the first recorded stays."""
    hosts = HostRepository(session)
    await hosts.pin_host_key(host_id, host_key)
    host = await get_host(session, host_id=host_id)
    await session.refresh(host, ["host_key"])
    assert host.host_key is not None
    return host.host_key


async def record_host_system(
    session: AsyncSession, host_id: int, *, operating_system: str, architecture: str
) -> None:
    """The system a host reported when it was surveyed."""
    await get_host(session, host_id=host_id)
    await HostRepository(session).set_system(
        host_id, operating_system=operating_system, architecture=architecture
    )


async def mark_host_available(session: AsyncSession, host_id: int) -> None:
    """A host that passed its checks is AVAILABLE for servers."""
    await get_host(session, host_id=host_id)
    await HostRepository(session).set_status(host_id, HostStatus.AVAILABLE)


#: Hosts that can take new servers: prepared (AVAILABLE), or running some already (ONLINE).
HOSTS_READY_FOR_SERVERS = frozenset({HostStatus.AVAILABLE, HostStatus.ONLINE})


async def reserve_hosts(session: AsyncSession, host_ids: Collection[int]) -> None:
    """Hosts about to run servers that obpilot creates are ONLINE: in use."""
    await HostRepository(session).move_statuses(
        host_ids, from_status=HostStatus.AVAILABLE, to_status=HostStatus.ONLINE
    )


async def free_hosts(
    session: AsyncSession, host_ids: Collection[int], *, leaving: Collection[int] = ()
) -> list[int]:
    """Of `host_ids`, those that no server uses any more (the servers `leaving` aside) are
    AVAILABLE again; returns them."""
    hosts = HostRepository(session)
    unused = set(host_ids) - await hosts.used(host_ids, ignoring=leaving)
    await hosts.move_statuses(unused, from_status=HostStatus.ONLINE, to_status=HostStatus.AVAILABLE)
    return sorted(unused)


async def delete_host(session: AsyncSession, *, host_id: int) -> None:
    await delete_hosts(session, host_ids=[host_id])


async def delete_hosts(session: AsyncSession, *, host_ids: Sequence[int]) -> None:
    """Deletes all the hosts or none: each must exist, and no server may run on any."""
    hosts = HostRepository(session)
    found = await hosts.by_ids(host_ids)
    missing = [host_id for host_id in host_ids if host_id not in found]
    if missing:
        raise HostNotFound(missing[0])
    used = await hosts.servers_on(host_ids)
    if used:
        uses = [
            f"host {found[server.host_id].name} runs server {server.ip}:{server.sql_port} "
            f"of OB cluster {cluster_name}"
            for server, cluster_name in used
        ]
        raise HostInUse(
            f"{'; '.join(uses[:10])}{'; ...' if len(uses) > 10 else ''}: remove those servers "
            "from obpilot first; no host was deleted"
        )
    for host_id in host_ids:
        await hosts.delete(found[host_id])


# ------------------------------------------------------------------ clusters


async def list_clusters(
    session: AsyncSession,
    *,
    page: PageRequest,
    name: str | None,
    statuses: Sequence[str],
    ids: Collection[int] | None = None,
) -> tuple[list[Cluster], int]:
    """`ids`: only these clusters (what the caller may read); None: all."""
    return await ClusterRepository(session).page(page, name=name, statuses=statuses, ids=ids)


async def get_cluster(session: AsyncSession, *, cluster_id: int) -> Cluster:
    """The cluster with its zones and servers."""
    cluster = await ClusterRepository(session).get(cluster_id)
    if cluster is None:
        raise ClusterNotFound(cluster_id)
    return cluster


async def find_cluster_row(
    session: AsyncSession, cluster_id: int, *, for_update: bool = False
) -> Cluster | None:
    """The cluster's row alone, or None once it is forgotten."""
    return await ClusterRepository(session).get_row(cluster_id, for_update=for_update)


async def cluster_ids(session: AsyncSession) -> list[int]:
    return await ClusterRepository(session).ids()


async def cluster_names(session: AsyncSession, cluster_ids: Collection[int]) -> dict[int, str]:
    return await ClusterRepository(session).names(cluster_ids)


async def get_zone(session: AsyncSession, *, cluster_id: int, zone_name: str) -> Zone:
    cluster = await get_cluster(session, cluster_id=cluster_id)
    for zone in cluster.zones:
        if zone.name == zone_name:
            return zone
    raise ZoneNotFound(cluster_id, zone_name)


async def ensure_cluster_name_free(session: AsyncSession, name: str) -> None:
    if await ClusterRepository(session).get_by_name(name) is not None:
        raise DuplicateName(f"An OB cluster named {name!r} already exists")


async def register_cluster(
    session: AsyncSession, *, spec: ClusterSpec, root_password_encrypted: str | None = None
) -> Cluster:
    """Records a cluster whose servers were already checked (the sys tenant's root
    password encrypted, if it has one)."""
    await ensure_cluster_name_free(session, spec.name)
    zone_names = [zone.name for zone in spec.zones]
    if len(set(zone_names)) != len(zone_names):
        raise BadRequest(f"Zone names must be unique within a cluster: {zone_names}")
    cluster = await ClusterRepository(session).add(
        Cluster(
            name=spec.name,
            ob_cluster_id=spec.ob_cluster_id,
            ob_version=spec.ob_version,
            status=spec.status,
            creator=spec.creator,
            root_password_encrypted=root_password_encrypted,
            origin=spec.origin,
            full_version=spec.full_version,
            client_token=spec.client_token,
            request_digest=spec.request_digest,
        )
    )
    await add_members(session, cluster_id=cluster.id, zones=spec.zones)
    return await get_cluster(session, cluster_id=cluster.id)


async def add_members(
    session: AsyncSession, *, cluster_id: int, zones: Sequence[ZoneSpec]
) -> list[Server]:
    """Records zones (new ones, or existing ones by name) and their new servers in a
    cluster; returns the new servers."""
    clusters = ClusterRepository(session)
    hosts = HostRepository(session)
    added = []
    for zone_spec in zones:
        zone = await clusters.find_zone(cluster_id, zone_spec.name)
        if zone is None:
            zone = await clusters.add_zone(
                Zone(
                    cluster_id=cluster_id,
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
            added.append(
                await clusters.add_server(
                    Server(
                        cluster_id=cluster_id,
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
                        package_id=server_spec.package_id,
                        data_path=server_spec.data_path,
                    )
                )
            )
    return added


async def stamp_created_by(
    session: AsyncSession, *, cluster: Cluster | None, servers: Sequence[Server], task_id: int
) -> None:
    """Names the task that creates a cluster and its servers, or adds servers: only that
    task's rollback removes them (and what it made on their hosts)."""
    if cluster is not None:
        cluster.create_task_id = task_id
    for server in servers:
        server.created_by_task_id = task_id
    await session.flush()


async def set_full_version(session: AsyncSession, cluster_id: int, full_version: str) -> None:
    """Records the version a cluster's binary reported, unless the cluster names one."""
    await ClusterRepository(session).set_full_version(cluster_id, full_version)


async def find_cluster_by_token(
    session: AsyncSession, *, creator: str, client_token: str
) -> Cluster | None:
    return await ClusterRepository(session).get_by_client_token(creator, client_token)


async def remove_servers(session: AsyncSession, server_ids: Collection[int]) -> None:
    """Forgets servers (and any zone left without servers): nothing on their hosts."""
    await ClusterRepository(session).remove_servers(server_ids)


async def forget_cluster(session: AsyncSession, cluster_id: int) -> None:
    """Removes the cluster, its zones and servers from obpilot, and the roles' grants on it;
    nothing on any host. The caller decides whether it may (see `idle_cluster`)."""
    await ClusterRepository(session).forget(cluster_id)
    await iam.drop_cluster_grants(session, cluster_id=cluster_id)


# ------------------------------------------------------------------ the operation lock


async def idle_cluster(session: AsyncSession, cluster_id: int) -> Cluster:
    """The cluster (zones and servers loaded), row-locked, and not kept busy by the task
    holding its lock (otherwise ClusterBusy, OBE11020)."""
    cluster = await ClusterRepository(session).get_locked(cluster_id)
    if cluster is None:
        raise ClusterNotFound(cluster_id)
    await _ensure_idle(session, cluster)
    return cluster


async def _ensure_idle(session: AsyncSession, cluster: Cluster) -> None:
    holder = await ClusterRepository(session).lock_holder(cluster)
    if holder is not None and state.keeps_cluster_busy(holder.status):
        raise ClusterBusy(cluster.name, holder.id, holder.name, holder.status)


async def take_operation_lock(session: AsyncSession, cluster: Cluster, task_id: int) -> None:
    """Gives `cluster`'s lock to `task_id`, created in this transaction for a cluster that
    `idle_cluster` returned."""
    clusters = ClusterRepository(session)
    if not await clusters.take_lock(cluster.id, held_by=cluster.operation_task_id, task_id=task_id):
        # Another request took the lock between our read and our write.
        await session.refresh(cluster)
        await _ensure_idle(session, cluster)
        raise ClusterBusy(cluster.name, -1, "another operation", "RUNNING")


async def release_operation_lock(
    session: AsyncSession, *, cluster_id: int, task_id: int, task_status: str
) -> None:
    """At the end of a task: the lock it holds is freed unless the task still keeps the
    cluster busy (a FAILED task keeps it until it is retried, skipped or rolled back)."""
    if not state.keeps_cluster_busy(task_status):
        await ClusterRepository(session).release_lock(cluster_id, task_id)


async def operation_running(session: AsyncSession, cluster: Cluster) -> bool:
    """Whether the task holding the cluster's lock is writing its statuses now."""
    holder = await ClusterRepository(session).lock_holder(cluster)
    return holder is not None and state.writes_cluster_statuses(holder.status)


# ------------------------------------------------------------------ servers and statuses


async def find_server(session: AsyncSession, server_id: int) -> Server | None:
    return await ServerRepository(session).get(server_id)


async def servers_of_cluster(session: AsyncSession, cluster_id: int) -> list[Server]:
    return await ServerRepository(session).of_cluster(cluster_id)


async def servers_on_host(session: AsyncSession, host_id: int) -> list[Server]:
    return await ServerRepository(session).on_host(host_id)


async def servers_using(
    session: AsyncSession, *, host_id: int, ports: Collection[int], homes: Collection[str]
) -> list[Server]:
    """Registered servers on `host_id` that use one of `ports` (SQL or RPC) or `homes`."""
    return await ServerRepository(session).using(host_id, ports, homes)


async def server_process_spec(
    session: AsyncSession, server: Server, *, secret_box: SecretBox
) -> ProcessSpec:
    """What a process driver needs to find, check and start a stored server (with the
    cluster's root password, decrypted, for its SQL checks)."""
    zone, cluster = await ServerRepository(session).zone_and_cluster(server)
    password = (
        secret_box.decrypt(cluster.root_password_encrypted)
        if cluster.root_password_encrypted
        else None
    )
    return ProcessSpec(
        kind=server.kind,
        sql_port=server.sql_port,
        home_path=server.home_path,
        rpc_port=server.port,
        binary_path=server.binary_path,
        parameters={key: str(value) for key, value in (server.parameters or {}).items()},
        zone_name=zone.name,
        cluster_name=cluster.name,
        ob_cluster_id=cluster.ob_cluster_id,
        server_ip=server.ip,
        sql_password=password,
    )


async def set_server_status(
    session: AsyncSession, server_id: int, status: str, **times: datetime | None
) -> None:
    """`times`: start_time and stop_time changed with the status."""
    await ServerRepository(session).set_status(server_id, status, **times)


async def set_found_server_status(
    session: AsyncSession, server_id: int, status: str, version: str | None
) -> None:
    """What a look at a server found: its status, and its version when it reports one."""
    versioned = {"version": version} if version is not None else {}
    await ServerRepository(session).set_status(server_id, status, **versioned)


async def set_zone_status(
    session: AsyncSession, *, cluster_id: int, zone_name: str, status: str
) -> None:
    await ZoneRepository(session).set_status(cluster_id, zone_name, status)


async def set_cluster_status(session: AsyncSession, cluster_id: int, status: str) -> None:
    await ClusterRepository(session).set_status(cluster_id, status)


async def update_zone_status(
    session: AsyncSession, *, cluster_id: int, zone_name: str
) -> ZoneStatus | None:
    """Records the zone's status as its servers' statuses make it (None: no such zone)."""
    zone = await ZoneRepository(session).get_by_name(cluster_id, zone_name)
    return None if zone is None else await _update_zone_status(session, zone)


async def _update_zone_status(session: AsyncSession, zone: Zone) -> ZoneStatus:
    status = state.zone_status_from(await ServerRepository(session).statuses_in_zone(zone.id))
    await ZoneRepository(session).set_status(zone.cluster_id, zone.name, status)
    return status


async def update_cluster_status(session: AsyncSession, cluster_id: int) -> ClusterStatus:
    """Records the cluster's status as its zones' statuses make it."""
    status = state.cluster_status_from(await ZoneRepository(session).statuses(cluster_id))
    await set_cluster_status(session, cluster_id, status)
    return status


async def update_cluster_version(session: AsyncSession, cluster_id: int) -> str | None:
    """Records the version most of the cluster's servers report, if any reports one."""
    version = state.cluster_version_from(await ServerRepository(session).versions(cluster_id))
    if version is not None:
        await ClusterRepository(session).set_version(cluster_id, version)
    return version


async def record_server_statuses(
    session: AsyncSession, cluster_id: int, statuses: Mapping[int, str]
) -> None:
    """Records servers' statuses (server id -> status), then every zone's and the
    cluster's as they follow from them."""
    for server_id, status in statuses.items():
        await set_server_status(session, server_id, status)
    for zone in await ZoneRepository(session).of_cluster(cluster_id):
        await _update_zone_status(session, zone)
    await update_cluster_status(session, cluster_id)


async def servers_using_package(session: AsyncSession, package_id: int) -> list[tuple[Server, str]]:
    """The servers installed from a software package, each with its cluster's name."""
    return await repository.servers_using_package(session, package_id)
