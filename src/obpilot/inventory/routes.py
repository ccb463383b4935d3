"""Inventory HTTP routes: hosts, clusters, zones, servers. Adding a host
(`POST /api/v2/compute/hosts`) is in `credentials.routes`: it logs in with a credential
before the inventory records the host."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from obpilot.api.deps import SessionDep, WriteSessionDep
from obpilot.api.envelope import Contents, Envelope, NoDataEnvelope, Page, ok, ok_no_data
from obpilot.api.pagination import make_page, page_params
from obpilot.api.params import MAX_ID, ClusterId, HostId, ZoneName
from obpilot.iam.deps import EACH, require
from obpilot.iam.permissions import Principal
from obpilot.inventory import service
from obpilot.inventory.models import ClusterStatus, HostStatus
from obpilot.inventory.repository import CLUSTER_SORT, HOST_SORT
from obpilot.inventory.schemas import (
    ClusterOut,
    HostIdList,
    HostOut,
    ServerOut,
    ZoneOut,
    cluster_out,
    host_out,
    server_out,
    zone_out,
)
from obpilot.paging import PageRequest

router = APIRouter()


async def check_processes(request: Request, id: ClusterId) -> None:
    """Reading one cluster first compares its stored statuses with its real processes
    (at most every `reconcile_max_age_seconds`; never while an operation runs on it)."""
    settings = request.app.state.settings
    await request.app.state.reconciler.reconcile_if_stale(id, settings.reconcile_max_age_seconds)


HostPage = Annotated[PageRequest, Depends(page_params(HOST_SORT))]
ClusterPage = Annotated[PageRequest, Depends(page_params(CLUSTER_SORT))]


@router.get(
    "/api/v2/compute/hosts",
    tags=["hosts"],
    summary="List hosts",
    dependencies=[Depends(require("HOST", "READ"))],
)
async def list_hosts(
    session: SessionDep,
    page: HostPage,
    status: Annotated[list[HostStatus] | None, Query()] = None,
    idcId: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None, Query()] = None,
    keyword: Annotated[str | None, Query(max_length=128)] = None,
) -> Envelope[Page[HostOut]]:
    hosts, total = await service.list_hosts(
        session, page=page, statuses=status or [], idc_ids=idcId or [], keyword=keyword
    )
    catalog = await service.host_catalog(session, hosts)
    return ok(make_page([host_out(h, catalog) for h in hosts], total, page))


@router.get(
    "/api/v2/compute/hosts/{hostId}",
    tags=["hosts"],
    summary="Get a host",
    dependencies=[Depends(require("HOST", "READ"))],
)
async def get_host(session: SessionDep, hostId: HostId) -> Envelope[HostOut]:
    host = await service.get_host(session, host_id=hostId)
    return ok(host_out(host, await service.host_catalog(session, [host])))


@router.delete(
    "/api/v2/compute/hosts/{hostId}",
    tags=["hosts"],
    summary="Delete a host",
    dependencies=[Depends(require("HOST", "DELETE"))],
)
async def delete_host(session: SessionDep, hostId: HostId) -> NoDataEnvelope:
    await service.delete_host(session, host_id=hostId)
    return ok_no_data()


@router.post(
    "/api/v2/compute/hosts/batchDelete",
    tags=["hosts"],
    summary="Delete hosts: all of them, or none if one is missing or runs a server",
    dependencies=[Depends(require("HOST", "DELETE"))],
)
async def batch_delete_hosts(session: WriteSessionDep, body: HostIdList) -> NoDataEnvelope:
    await service.delete_hosts(session, host_ids=body.host_id_list)
    return ok_no_data()


@router.get(
    "/api/v2/ob/clusters",
    tags=["clusters"],
    summary="Query clusters (those the caller may read)",
)
async def list_clusters(
    session: SessionDep,
    page: ClusterPage,
    caller: Annotated[Principal, Depends(require("CLUSTER", "READ", cluster_id_param=EACH))],
    name: Annotated[str | None, Query(max_length=128, description="Keyword, any case.")] = None,
    status: Annotated[list[ClusterStatus] | None, Query()] = None,
) -> Envelope[Page[ClusterOut]]:
    readable = caller.permissions.instances("CLUSTER", "READ")
    clusters, total = await service.list_clusters(
        session,
        page=page,
        name=name,
        statuses=status or [],
        ids=readable,
    )
    return ok(make_page([cluster_out(c) for c in clusters], total, page))


@router.get(
    "/api/v2/ob/clusters/{id}",
    tags=["clusters"],
    summary="Get a cluster",
    dependencies=[Depends(require("CLUSTER", "READ", cluster_id_param="id"))],
)
async def get_cluster(
    session: SessionDep, id: ClusterId, _checked: Annotated[None, Depends(check_processes)]
) -> Envelope[ClusterOut]:
    return ok(cluster_out(await service.get_cluster(session, cluster_id=id)))


@router.get(
    "/api/v2/ob/clusters/{id}/zones",
    tags=["zones"],
    summary="List zones",
    dependencies=[Depends(require("CLUSTER", "READ", cluster_id_param="id"))],
)
async def list_zones(session: SessionDep, id: ClusterId) -> Envelope[Contents[ZoneOut]]:
    cluster = await service.get_cluster(session, cluster_id=id)
    return ok(Contents[ZoneOut](contents=[zone_out(zone, cluster) for zone in cluster.zones]))


@router.get(
    "/api/v2/ob/clusters/{id}/servers",
    tags=["servers"],
    summary="List servers",
    dependencies=[Depends(require("CLUSTER", "READ", cluster_id_param="id"))],
)
async def list_servers(
    session: SessionDep,
    id: ClusterId,
    regionName: Annotated[str | None, Query(max_length=128)] = None,
    idcName: Annotated[str | None, Query(max_length=128)] = None,
) -> Envelope[Contents[ServerOut]]:
    cluster = await service.get_cluster(session, cluster_id=id)
    servers = [
        server_out(server, zone)
        for zone in cluster.zones
        if regionName in (None, zone.region_name) and idcName in (None, zone.idc_name)
        for server in zone.servers
    ]
    return ok(Contents[ServerOut](contents=servers))


@router.get(
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/servers",
    tags=["servers"],
    summary="List the servers of a zone",
    dependencies=[Depends(require("CLUSTER", "READ", cluster_id_param="id"))],
)
async def list_zone_servers(
    session: SessionDep, id: ClusterId, zoneName: ZoneName
) -> Envelope[Contents[ServerOut]]:
    zone = await service.get_zone(session, cluster_id=id, zone_name=zoneName)
    return ok(Contents[ServerOut](contents=[server_out(s, zone) for s in zone.servers]))
