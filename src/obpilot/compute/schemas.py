"""Compute catalog shapes on the wire, named as OCP names them."""

from __future__ import annotations

from pydantic import Field

from obpilot.api.envelope import CamelModel, TimesOut
from obpilot.compute.models import Idc, Region


class CatalogEntryCreate(CamelModel):
    """A region or a host type."""

    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=256)


class IdcCreate(CatalogEntryCreate):
    region_id: int = Field(ge=1, le=2**63 - 1)


class CatalogEntryOut(TimesOut):
    """A region or a host type."""

    id: int
    name: str
    description: str | None


class IdcOut(CatalogEntryOut):
    region_id: int
    region_name: str


def idc_out(idc: Idc, regions: dict[int, Region]) -> IdcOut:
    return IdcOut(
        id=idc.id,
        name=idc.name,
        description=idc.description,
        region_id=idc.region_id,
        region_name=regions[idc.region_id].name,
        create_time=idc.create_time,
        update_time=idc.update_time,
    )
