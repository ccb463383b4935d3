"""Compute catalog rules: unique names, an IDC's region exists, and nothing is deleted that
is still named; a refusal changes nothing."""

from __future__ import annotations

import pytest

from obpilot.compute import service
from obpilot.compute.service import HOST_TYPE, IDC, REGION
from obpilot.db.engine import Database
from obpilot.errors import CatalogEntryInUse, CatalogEntryNotFound, DuplicateName
from obpilot.inventory import service as inventory
from obpilot.inventory.models import HostKind
from obpilot.inventory.schemas import HostCreate


async def test_names_are_unique_per_kind_and_an_idc_needs_its_region(database: Database) -> None:
    async with database.transaction(write=True) as session:
        region = await service.create_region(session, name="east", description=None)
        await service.create_host_type(session, name="east", description="same name, other kind")
        with pytest.raises(DuplicateName, match="A region named 'east' already exists"):
            await service.create_region(session, name="east", description=None)
        with pytest.raises(CatalogEntryNotFound, match="Region <999> does not exist"):
            await service.create_idc(session, name="dc1", description=None, region_id=999)
        idc = await service.create_idc(session, name="dc1", description=None, region_id=region.id)
        assert await service.regions_of(session, [idc]) == {region.id: region}


async def test_what_is_still_named_is_not_deleted(database: Database) -> None:
    async with database.transaction(write=True) as session:
        region = await service.create_region(session, name="east", description=None)
        idc = await service.create_idc(session, name="dc1", description=None, region_id=region.id)
        host_type = await service.create_host_type(session, name="x86", description=None)
        host = await inventory.create_host(
            session,
            spec=HostCreate(
                name="db1",
                inner_ip_address="127.0.0.1",
                kind=HostKind.LOCAL,
                idc_id=idc.id,
                type_id=host_type.id,
            ),
            host_key=None,
        )
    async with database.transaction(write=True) as session:
        with pytest.raises(CatalogEntryInUse, match="Region east has IDC\\(s\\) dc1"):
            await service.delete_region(session, region_id=region.id)
        with pytest.raises(CatalogEntryInUse, match="IDC dc1 is the IDC of host\\(s\\) db1"):
            await service.delete_idc(session, idc_id=idc.id)
        with pytest.raises(CatalogEntryInUse, match="Host type x86 is the type of host\\(s\\) db1"):
            await service.delete_host_type(session, type_id=host_type.id)
        # All still there.
        assert (await service.get_entry(session, REGION, region.id)).name == "east"
        assert (await service.get_entry(session, IDC, idc.id)).name == "dc1"
        assert (await service.get_entry(session, HOST_TYPE, host_type.id)).name == "x86"
        catalog = await service.host_catalog(session, idc_ids=[idc.id], type_ids=[host_type.id])
        assert catalog.regions[region.id].name == "east"

    async with database.transaction(write=True) as session:
        await inventory.delete_host(session, host_id=host.id)
        await service.delete_host_type(session, type_id=host_type.id)
        await service.delete_idc(session, idc_id=idc.id)
        await service.delete_region(session, region_id=region.id)
        with pytest.raises(CatalogEntryNotFound, match=f"IDC <{idc.id}> does not exist"):
            await service.get_entry(session, IDC, idc.id)
