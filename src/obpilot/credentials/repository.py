"""All credential SQL. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from obpilot.credentials.models import Credential
from obpilot.paging import PageRequest

CREDENTIAL_SORT: dict[str, InstrumentedAttribute[Any]] = {
    "id": Credential.id,
    "name": Credential.name,
    "createTime": Credential.create_time,
}


class CredentialRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, credential_id: int) -> Credential | None:
        return await self.session.get(Credential, credential_id)

    async def get_by_name(self, owner_id: int, name: str) -> Credential | None:
        return await self.session.scalar(
            select(Credential).where(Credential.owner_id == owner_id, Credential.name == name)
        )

    async def page(
        self, page: PageRequest, *, owner_id: int | None
    ) -> tuple[list[Credential], int]:
        """A page of the credentials of `owner_id`, or of every owner's with None."""
        owned = [] if owner_id is None else [Credential.owner_id == owner_id]
        total = await self.session.scalar(
            select(func.count()).select_from(Credential).where(*owned)
        )
        order = [
            CREDENTIAL_SORT[s.field].desc() if s.descending else CREDENTIAL_SORT[s.field].asc()
            for s in page.sort
        ]
        rows = await self.session.scalars(
            select(Credential)
            .where(*owned)
            .order_by(*order, Credential.id.asc())
            .offset(page.offset)
            .limit(page.size)
        )
        return list(rows), int(total or 0)

    async def add(self, credential: Credential) -> Credential:
        self.session.add(credential)
        await self.session.flush()
        return credential

    async def delete(self, credential: Credential) -> None:
        await self.session.delete(credential)
        await self.session.flush()
