"""Taking over a cluster whose server processes already exist, and forgetting a cluster.

A takeover validates everything before writing anything (hosts, names, ports and homes,
the process driver's own parameter checks). Then, in one transaction, it registers the
cluster (TAKINGOVER; its zones and servers UNAVAILABLE until checked), submits the task
"Take over OB cluster" and takes the cluster's operation lock. The task looks at every
server on its host and records what it finds (`obpilot.flows.takeover`).

Forgetting removes the cluster, its zones and servers from obpilot and nothing else: no
process is signalled and no file is touched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine import Submitted
from obpilot.errors import (
    BadRequest,
    DuplicateServer,
    HostNotFound,
    InvalidServerParameter,
)
from obpilot.flows import takeover as flow
from obpilot.hosts.drivers import ProcessSpec, check_spec
from obpilot.inventory import service as inventory
from obpilot.inventory.models import ClusterStatus, Host, ServerStatus, ZoneStatus
from obpilot.inventory.schemas import ClusterSpec, ServerSpec, ZoneSpec
from obpilot.operations.service import Caller, submit_for_cluster
from obpilot.secretbox import SecretBox
from obpilot.takeover.schemas import TakeOverRequest, TakeOverServer, TakeOverZone

FORGET_ONLY = (
    "obpilot did not create OB cluster {id}, so it only forgets it: "
    "DELETE /api/v2/ob/clusters/{id}?keepProcesses=true removes the cluster, its zones and "
    "servers from obpilot and leaves every process and its data on the hosts as they are"
)


@dataclass(frozen=True)
class _Planned:
    zone: TakeOverZone
    server: TakeOverServer
    host: Host

    @property
    def label(self) -> str:
        return f"{self.server.kind} {self.host.inner_ip_address}:{self.server.sql_port}"

    @property
    def ports(self) -> list[int]:
        return [p for p in (self.server.sql_port, self.server.rpc_port) if p is not None]


async def take_over(
    session: AsyncSession,
    *,
    request: TakeOverRequest,
    caller: Caller,
    secret_box: SecretBox,
) -> Submitted:
    await _validate(session, request)
    password = request.root_password.get_secret_value() if request.root_password else ""
    spec = ClusterSpec(
        name=request.name,
        ob_cluster_id=request.ob_cluster_id,
        status=ClusterStatus.TAKINGOVER,
        creator=caller.name,
        zones=[
            ZoneSpec(
                name=zone.name,
                idc_name=zone.idc_name,
                region_name=zone.region_name,
                status=ZoneStatus.UNAVAILABLE,
                servers=[
                    ServerSpec(
                        host_id=server.host_id,
                        kind=server.kind,
                        sql_port=server.sql_port,
                        rpc_port=server.rpc_port,
                        home_path=server.home,
                        binary_path=server.binary_path,
                        parameters=server.parameters,
                        status=ServerStatus.UNAVAILABLE,
                    )
                    for server in zone.servers
                ],
            )
            for zone in request.zones
        ],
    )
    try:
        cluster = await inventory.register_cluster(
            session,
            spec=spec,
            root_password_encrypted=secret_box.encrypt(password) if password else None,
        )
    except IntegrityError:
        # Only a concurrent request can get here: everything was checked above.
        raise DuplicateServer(
            f"OB cluster {request.name} or one of its servers was registered by another "
            "request at the same time; nothing was changed"
        ) from None
    lists = {
        "server_ids": [str(s.id) for zone in cluster.zones for s in zone.servers],
        "zone_names": [zone.name for zone in cluster.zones],
    }
    strings = {"ob_cluster_id": str(cluster.ob_cluster_id)}
    return await submit_for_cluster(
        session, cluster, flow.TAKE_OVER_CLUSTER, strings, lists, caller
    )


async def _validate(session: AsyncSession, request: TakeOverRequest) -> list[_Planned]:
    """Every check that needs no host, before anything is written."""
    await inventory.ensure_cluster_name_free(session, request.name)
    hosts = await inventory.hosts_by_id(session, {s.host_id for _, s in request.servers})
    for _, server in request.servers:
        if server.host_id not in hosts:
            raise HostNotFound(server.host_id)
    planned = [_Planned(zone, server, hosts[server.host_id]) for zone, server in request.servers]
    for item in planned:
        _check_driver(request, item)
    _check_within_request(planned)
    await _check_against_registered(session, planned)
    return planned


def _check_driver(request: TakeOverRequest, item: _Planned) -> None:
    """The kind's process driver validates the spec it would run with (seekdb refuses a bad
    parameter value with a silent exit, so obpilot checks values itself)."""
    spec = ProcessSpec(
        kind=item.server.kind,
        sql_port=item.server.sql_port,
        home_path=item.server.home,
        rpc_port=item.server.rpc_port,
        binary_path=item.server.binary_path,
        parameters=dict(item.server.parameters),
        zone_name=item.zone.name,
        cluster_name=request.name,
        ob_cluster_id=request.ob_cluster_id,
        server_ip=item.host.inner_ip_address,
    )
    try:
        check_spec(spec)
    except (ValueError, InvalidServerParameter) as error:
        raise BadRequest(f"{item.label} (zone {item.zone.name}): {error}") from None


def _pairs(planned: list[_Planned]) -> Iterator[tuple[_Planned, _Planned]]:
    for index, first in enumerate(planned):
        for second in planned[index + 1 :]:
            if first.host.id == second.host.id:
                yield first, second


def _check_within_request(planned: list[_Planned]) -> None:
    for first, second in _pairs(planned):
        shared = sorted(set(first.ports) & set(second.ports))
        if shared:
            raise DuplicateServer(
                f"Two servers of the request use port {shared[0]} on host "
                f"{first.host.name}: {first.label} and {second.label}"
            )
        if first.server.home == second.server.home:
            raise DuplicateServer(
                f"Two servers of the request use home {first.server.home} on host "
                f"{first.host.name}: {first.label} and {second.label}"
            )


async def _check_against_registered(session: AsyncSession, planned: list[_Planned]) -> None:
    for item in planned:
        found = await inventory.servers_using(
            session, host_id=item.host.id, ports=item.ports, homes=[item.server.home]
        )
        if not found:
            continue
        other = found[0]
        names = await inventory.cluster_names(session, [other.cluster_id])
        owner = names.get(other.cluster_id, str(other.cluster_id))
        if other.home_path == item.server.home:
            what = f"home {other.home_path}"
        else:
            shared = {other.sql_port, other.port} & set(item.ports)
            what = f"port {min(p for p in shared if p is not None)}"
        raise DuplicateServer(
            f"{item.label}: host {item.host.name} already has a server of OB cluster {owner} "
            f"with {what} (server id {other.id}); forget that cluster first if it is gone"
        )


async def forget_cluster(session: AsyncSession, *, cluster_id: int, keep_processes: bool) -> None:
    """Removes the cluster from obpilot; its processes and data stay on the hosts. Refused
    while an unfinished task holds the cluster's operation lock."""
    if not keep_processes:
        raise BadRequest(FORGET_ONLY.replace("{id}", str(cluster_id)))
    cluster = await inventory.idle_cluster(session, cluster_id)
    await inventory.forget_cluster(session, cluster.id)
