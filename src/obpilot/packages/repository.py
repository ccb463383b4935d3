"""All software package SQL. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from obpilot.packages.models import SoftwarePackage
from obpilot.paging import PageRequest

PACKAGE_SORT: dict[str, InstrumentedAttribute[Any]] = {
    "id": SoftwarePackage.id,
    "name": SoftwarePackage.name,
    "fileName": SoftwarePackage.file_name,
    "version": SoftwarePackage.version,
    "size": SoftwarePackage.size,
    "createTime": SoftwarePackage.create_time,
}


@dataclass(frozen=True)
class PackageFilter:
    """A list's filters; each list holds the values any of which a package may have."""

    keyword: str | None = None
    types: Sequence[str] = field(default_factory=tuple)
    versions: Sequence[str] = field(default_factory=tuple)
    architectures: Sequence[str] = field(default_factory=tuple)
    operating_systems: Sequence[str] = field(default_factory=tuple)


class PackageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, package_id: int) -> SoftwarePackage | None:
        return await self.session.get(SoftwarePackage, package_id)

    async def get_by_sha1(self, sha1: str) -> SoftwarePackage | None:
        return await self.session.scalar(
            select(SoftwarePackage).where(SoftwarePackage.sha1 == sha1)
        )

    async def get_by_file_name(self, file_name: str) -> SoftwarePackage | None:
        return await self.session.scalar(
            select(SoftwarePackage).where(SoftwarePackage.file_name == file_name)
        )

    async def named(self, name: str) -> list[SoftwarePackage]:
        return list(
            await self.session.scalars(
                select(SoftwarePackage)
                .where(SoftwarePackage.name == name)
                .order_by(SoftwarePackage.file_name)
            )
        )

    async def of_kind(self, kind: str, *, version: str, architecture: str) -> list[SoftwarePackage]:
        return list(
            await self.session.scalars(
                select(SoftwarePackage)
                .where(
                    SoftwarePackage.kind == kind,
                    SoftwarePackage.version == version,
                    SoftwarePackage.architecture == architecture,
                )
                .order_by(SoftwarePackage.file_name)
            )
        )

    async def file_names(self) -> list[str]:
        return list(
            await self.session.scalars(
                select(SoftwarePackage.file_name).order_by(SoftwarePackage.file_name)
            )
        )

    async def page(
        self, page: PageRequest, filters: PackageFilter
    ) -> tuple[list[SoftwarePackage], int]:
        statement = select(SoftwarePackage)
        if filters.keyword:
            statement = statement.where(
                or_(
                    SoftwarePackage.name.icontains(filters.keyword, autoescape=True),
                    SoftwarePackage.file_name.icontains(filters.keyword, autoescape=True),
                )
            )
        for column, values in (
            (SoftwarePackage.type, filters.types),
            (SoftwarePackage.version, filters.versions),
            (SoftwarePackage.architecture, filters.architectures),
            (SoftwarePackage.operating_system, filters.operating_systems),
        ):
            if values:
                statement = statement.where(column.in_(list(values)))
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        order = [
            PACKAGE_SORT[s.field].desc() if s.descending else PACKAGE_SORT[s.field].asc()
            for s in page.sort
        ]
        rows = await self.session.scalars(
            statement.order_by(*order, SoftwarePackage.id.asc())
            .offset(page.offset)
            .limit(page.size)
        )
        return list(rows), int(total or 0)

    async def add(self, package: SoftwarePackage) -> SoftwarePackage:
        self.session.add(package)
        await self.session.flush()
        return package

    async def delete(self, package: SoftwarePackage) -> None:
        await self.session.delete(package)
        await self.session.flush()
