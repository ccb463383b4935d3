"""All SQL on the compute catalog's tables (regions, IDCs, host types), and the one look
at who names an entry. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Generic, TypeVar

from sqlalchemy import column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from obpilot.compute.models import HostType, Idc, Region
from obpilot.paging import PageRequest

EntryT = TypeVar("EntryT", Region, Idc, HostType)

SortColumns = dict[str, InstrumentedAttribute[Any]]


def _sort_columns(model: type[Region] | type[Idc] | type[HostType]) -> SortColumns:
    return {"id": model.id, "name": model.name, "createTime": model.create_time}


REGION_SORT = _sort_columns(Region)
IDC_SORT = _sort_columns(Idc)
HOST_TYPE_SORT = _sort_columns(HostType)


class CatalogRepository(Generic[EntryT]):
    """Regions, IDCs and host types have one shape (id, unique name, description): one
    repository, given the table's model."""

    def __init__(self, session: AsyncSession, model: type[EntryT]) -> None:
        self.session = session
        self.model: type[EntryT] = model

    async def get(self, entry_id: int) -> EntryT | None:
        return await self.session.get(self.model, entry_id)

    async def get_by_name(self, name: str) -> EntryT | None:
        return await self.session.scalar(select(self.model).where(self.model.name == name))

    async def by_ids(self, entry_ids: Collection[int]) -> dict[int, EntryT]:
        if not entry_ids:
            return {}
        rows = await self.session.scalars(
            select(self.model).where(self.model.id.in_(list(entry_ids)))
        )
        return {entry.id: entry for entry in rows}

    async def page(self, page: PageRequest) -> tuple[list[EntryT], int]:
        columns = _sort_columns(self.model)
        total = await self.session.scalar(select(func.count()).select_from(self.model))
        order = [
            columns[s.field].desc() if s.descending else columns[s.field].asc() for s in page.sort
        ]
        # The primary key ends every ORDER BY so that pages are stable.
        rows = await self.session.scalars(
            select(self.model)
            .order_by(*order, self.model.id.asc())
            .offset(page.offset)
            .limit(page.size)
        )
        return list(rows), int(total or 0)

    async def add(self, entry: EntryT) -> EntryT:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def delete(self, entry: EntryT) -> None:
        await self.session.delete(entry)
        await self.session.flush()


async def idc_names_in_region(session: AsyncSession, region_id: int) -> list[str]:
    rows = await session.scalars(
        select(Idc.name).where(Idc.region_id == region_id).order_by(Idc.id)
    )
    return list(rows)


# Hosts name IDCs and host types by foreign keys into this catalog, and the inventory (a
# higher layer) owns the host table: compute may not import it, yet must refuse to delete
# an entry that a host names, saying which host. The foreign keys make these two columns
# the host table's contract with the catalog, so the catalog reads exactly them here, as
# a bare table (read only: the inventory alone writes hosts).
_HOST = table("host", column("id"), column("name"), column("idc_id"), column("type_id"))


async def host_names_in_idc(session: AsyncSession, idc_id: int) -> list[str]:
    rows = await session.scalars(
        select(_HOST.c.name).where(_HOST.c.idc_id == idc_id).order_by(_HOST.c.id)
    )
    return list(rows)


async def host_names_of_type(session: AsyncSession, type_id: int) -> list[str]:
    rows = await session.scalars(
        select(_HOST.c.name).where(_HOST.c.type_id == type_id).order_by(_HOST.c.id)
    )
    return list(rows)
