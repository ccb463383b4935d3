"""Compute catalog HTTP routes: regions, IDCs and host types, as OCP shapes them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from obpilot.api.deps import SessionDep, WriteSessionDep
from obpilot.api.envelope import Envelope, NoDataEnvelope, Page, ok, ok_no_data
from obpilot.api.pagination import make_page, page_params
from obpilot.api.params import HostTypeId, IdcId, RegionId
from obpilot.compute import service
from obpilot.compute.repository import HOST_TYPE_SORT, IDC_SORT, REGION_SORT
from obpilot.compute.schemas import CatalogEntryCreate, CatalogEntryOut, IdcCreate, IdcOut, idc_out
from obpilot.compute.service import HOST_TYPE, IDC, REGION
from obpilot.iam.deps import require
from obpilot.paging import PageRequest

router = APIRouter(tags=["compute"])

REGIONS = "/api/v2/compute/regions"
IDCS = "/api/v2/compute/idcs"
HOST_TYPES = "/api/v2/compute/hostTypes"

RegionPage = Annotated[PageRequest, Depends(page_params(REGION_SORT))]
IdcPage = Annotated[PageRequest, Depends(page_params(IDC_SORT))]
HostTypePage = Annotated[PageRequest, Depends(page_params(HOST_TYPE_SORT))]

READ = [Depends(require("HOST", "READ"))]
CREATE = [Depends(require("HOST", "CREATE"))]
DELETE = [Depends(require("HOST", "DELETE"))]

# ------------------------------------------------------------------ regions


@router.get(REGIONS, summary="List regions", dependencies=READ)
async def list_regions(session: SessionDep, page: RegionPage) -> Envelope[Page[CatalogEntryOut]]:
    regions, total = await service.list_entries(session, REGION, page=page)
    return ok(make_page([CatalogEntryOut.model_validate(r) for r in regions], total, page))


@router.post(REGIONS, summary="Create a region", dependencies=CREATE)
async def create_region(
    session: WriteSessionDep, body: CatalogEntryCreate
) -> Envelope[CatalogEntryOut]:
    region = await service.create_region(session, name=body.name, description=body.description)
    return ok(CatalogEntryOut.model_validate(region))


@router.get(REGIONS + "/{regionId}", summary="Get a region", dependencies=READ)
async def get_region(session: SessionDep, regionId: RegionId) -> Envelope[CatalogEntryOut]:
    region = await service.get_entry(session, REGION, regionId)
    return ok(CatalogEntryOut.model_validate(region))


@router.delete(REGIONS + "/{regionId}", summary="Delete a region without IDCs", dependencies=DELETE)
async def delete_region(session: WriteSessionDep, regionId: RegionId) -> NoDataEnvelope:
    await service.delete_region(session, region_id=regionId)
    return ok_no_data()


# ------------------------------------------------------------------ IDCs


@router.get(IDCS, summary="List IDCs", dependencies=READ)
async def list_idcs(session: SessionDep, page: IdcPage) -> Envelope[Page[IdcOut]]:
    idcs, total = await service.list_entries(session, IDC, page=page)
    regions = await service.regions_of(session, idcs)
    return ok(make_page([idc_out(idc, regions) for idc in idcs], total, page))


@router.post(IDCS, summary="Create an IDC in a region", dependencies=CREATE)
async def create_idc(session: WriteSessionDep, body: IdcCreate) -> Envelope[IdcOut]:
    idc = await service.create_idc(
        session, name=body.name, description=body.description, region_id=body.region_id
    )
    return ok(idc_out(idc, await service.regions_of(session, [idc])))


@router.get(IDCS + "/{idcId}", summary="Get an IDC", dependencies=READ)
async def get_idc(session: SessionDep, idcId: IdcId) -> Envelope[IdcOut]:
    idc = await service.get_entry(session, IDC, idcId)
    return ok(idc_out(idc, await service.regions_of(session, [idc])))


@router.delete(IDCS + "/{idcId}", summary="Delete an IDC that no host is in", dependencies=DELETE)
async def delete_idc(session: WriteSessionDep, idcId: IdcId) -> NoDataEnvelope:
    await service.delete_idc(session, idc_id=idcId)
    return ok_no_data()


# ------------------------------------------------------------------ host types


@router.get(HOST_TYPES, summary="List host types", dependencies=READ)
async def list_host_types(
    session: SessionDep, page: HostTypePage
) -> Envelope[Page[CatalogEntryOut]]:
    host_types, total = await service.list_entries(session, HOST_TYPE, page=page)
    return ok(make_page([CatalogEntryOut.model_validate(t) for t in host_types], total, page))


@router.post(HOST_TYPES, summary="Create a host type", dependencies=CREATE)
async def create_host_type(
    session: WriteSessionDep, body: CatalogEntryCreate
) -> Envelope[CatalogEntryOut]:
    host_type = await service.create_host_type(
        session, name=body.name, description=body.description
    )
    return ok(CatalogEntryOut.model_validate(host_type))


@router.get(HOST_TYPES + "/{hostTypeId}", summary="Get a host type", dependencies=READ)
async def get_host_type(session: SessionDep, hostTypeId: HostTypeId) -> Envelope[CatalogEntryOut]:
    host_type = await service.get_entry(session, HOST_TYPE, hostTypeId)
    return ok(CatalogEntryOut.model_validate(host_type))


@router.delete(
    HOST_TYPES + "/{hostTypeId}", summary="Delete a host type no host has", dependencies=DELETE
)
async def delete_host_type(session: WriteSessionDep, hostTypeId: HostTypeId) -> NoDataEnvelope:
    await service.delete_host_type(session, type_id=hostTypeId)
    return ok_no_data()
