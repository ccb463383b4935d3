"""Compute catalog rules: names are unique per kind, an IDC is in a region that exists, and
nothing is deleted while something names it (a region its IDCs, an IDC or a host type the
hosts). The only writer of the catalog's tables; the inventory reads through here what a
host's `idcId` and `typeId` name."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Generic

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.compute import repository
from obpilot.compute.models import HostType, Idc, Region
from obpilot.compute.repository import CatalogRepository, EntryT
from obpilot.errors import CatalogEntryInUse, CatalogEntryNotFound, DuplicateName
from obpilot.paging import PageRequest

#: How many of the names that use an entry a refusal lists.
NAMES_SHOWN = 10


@dataclass(frozen=True)
class CatalogKind(Generic[EntryT]):
    """One of the catalog's tables, and what its entries are called in messages."""

    model: type[EntryT]
    noun: str


REGION = CatalogKind(Region, "Region")
IDC = CatalogKind(Idc, "IDC")
HOST_TYPE = CatalogKind(HostType, "Host type")


async def list_entries(
    session: AsyncSession, kind: CatalogKind[EntryT], *, page: PageRequest
) -> tuple[list[EntryT], int]:
    return await CatalogRepository(session, kind.model).page(page)


async def get_entry(session: AsyncSession, kind: CatalogKind[EntryT], entry_id: int) -> EntryT:
    entry = await CatalogRepository(session, kind.model).get(entry_id)
    if entry is None:
        raise CatalogEntryNotFound(kind.noun, entry_id)
    return entry


async def create_region(session: AsyncSession, *, name: str, description: str | None) -> Region:
    return await _add(session, REGION, Region(name=name, description=description))


async def create_idc(
    session: AsyncSession, *, name: str, description: str | None, region_id: int
) -> Idc:
    await get_entry(session, REGION, region_id)
    return await _add(session, IDC, Idc(name=name, description=description, region_id=region_id))


async def create_host_type(
    session: AsyncSession, *, name: str, description: str | None
) -> HostType:
    return await _add(session, HOST_TYPE, HostType(name=name, description=description))


async def _add(session: AsyncSession, kind: CatalogKind[EntryT], entry: EntryT) -> EntryT:
    entries = CatalogRepository(session, kind.model)
    if await entries.get_by_name(entry.name) is not None:
        raise DuplicateName(f"A {kind.noun.lower()} named {entry.name!r} already exists")
    return await entries.add(entry)


async def delete_region(session: AsyncSession, *, region_id: int) -> None:
    region = await get_entry(session, REGION, region_id)
    idcs = await repository.idc_names_in_region(session, region_id)
    _refuse_if_used(region, REGION, "has IDC(s)", idcs)
    await CatalogRepository(session, Region).delete(region)


async def delete_idc(session: AsyncSession, *, idc_id: int) -> None:
    idc = await get_entry(session, IDC, idc_id)
    hosts = await repository.host_names_in_idc(session, idc_id)
    _refuse_if_used(idc, IDC, "is the IDC of host(s)", hosts)
    await CatalogRepository(session, Idc).delete(idc)


async def delete_host_type(session: AsyncSession, *, type_id: int) -> None:
    host_type = await get_entry(session, HOST_TYPE, type_id)
    hosts = await repository.host_names_of_type(session, type_id)
    _refuse_if_used(host_type, HOST_TYPE, "is the type of host(s)", hosts)
    await CatalogRepository(session, HostType).delete(host_type)


def _refuse_if_used(
    entry: EntryT, kind: CatalogKind[EntryT], relation: str, users: list[str]
) -> None:
    if users:
        more = f" and {len(users) - NAMES_SHOWN} more" if len(users) > NAMES_SHOWN else ""
        raise CatalogEntryInUse(
            f"{kind.noun} {entry.name} {relation} {', '.join(users[:NAMES_SHOWN])}{more}; "
            "delete or move those first"
        )


# ------------------------------------------------------------------ what hosts name


@dataclass(frozen=True)
class HostCatalog:
    """The IDCs (with their regions) and host types that some hosts name, by id."""

    idcs: dict[int, Idc] = field(default_factory=dict)
    regions: dict[int, Region] = field(default_factory=dict)
    host_types: dict[int, HostType] = field(default_factory=dict)


async def regions_of(session: AsyncSession, idcs: Collection[Idc]) -> dict[int, Region]:
    return await CatalogRepository(session, Region).by_ids({idc.region_id for idc in idcs})


async def host_catalog(
    session: AsyncSession, *, idc_ids: Collection[int], type_ids: Collection[int]
) -> HostCatalog:
    idcs = await CatalogRepository(session, Idc).by_ids(idc_ids)
    regions = await regions_of(session, idcs.values())
    host_types = await CatalogRepository(session, HostType).by_ids(type_ids)
    return HostCatalog(idcs=idcs, regions=regions, host_types=host_types)


async def check_placement(
    session: AsyncSession, *, idc_id: int | None, type_id: int | None
) -> None:
    """The IDC and host type a new host names exist (CatalogEntryNotFound otherwise)."""
    if idc_id is not None:
        await get_entry(session, IDC, idc_id)
    if type_id is not None:
        await get_entry(session, HOST_TYPE, type_id)


async def idc_by_name(session: AsyncSession, name: str) -> tuple[Idc, Region] | None:
    """An IDC that a zone names, with its region."""
    idc = await CatalogRepository(session, Idc).get_by_name(name)
    if idc is None:
        return None
    region = await CatalogRepository(session, Region).get(idc.region_id)
    assert region is not None  # an IDC's region cannot be deleted while it has IDCs
    return idc, region
