"""Claims and leases: finding READY work, renewing and checking held leases, finding
expired ones and those of this instance's previous boots, and the metadb's own clock and
version (which decide how to claim)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import exists, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskInstance
from obpilot.engine.repository.rows import SubtaskRef, core_table
from obpilot.engine.states import HELD_SUBTASK_STATUSES, SubtaskOperation, SubtaskStatus

S = SubtaskStatus
Sub = SubtaskInstance
HELD = [s.value for s in HELD_SUBTASK_STATUSES]
REF_COLUMNS = [field.name for field in fields(SubtaskRef)]  # its fields are column names


class ClaimMode(StrEnum):
    """How READY rows are locked for a claim, by metadb (see `ready_candidates`)."""

    IMMEDIATE = "immediate"  # SQLite: BEGIN IMMEDIATE already serialises writers
    SKIP_LOCKED = "skip_locked"  # PostgreSQL, MariaDB/MySQL
    WINDOW = "window"  # seekdb/OceanBase


class HeldLease(NamedTuple):
    subtask_id: int
    status: str
    version: int


async def any_ready(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(Sub.status == S.READY.value))))


async def ready_candidates(
    session: AsyncSession, *, limit: int, mode: ClaimMode
) -> list[SubtaskRef]:
    """READY subtasks, oldest first, for a claim (the columns a run needs, no ORM rows):

    * SKIP_LOCKED: `ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED`: rows other claimers hold
      are passed over.
    * WINDOW: there `LIMIT n` with SKIP LOCKED returned no rows at all while the first rows
      were locked, so the first `n` ids are read without locks, then locked with SKIP
      LOCKED and no LIMIT.
    * IMMEDIATE: no row locks.

    The claim itself is the conditional UPDATE, so correctness never rests on the lock."""
    table = core_table(Sub)
    ready = table.c.status == S.READY.value
    statement = select(*(table.c[name] for name in REF_COLUMNS)).where(ready).order_by(table.c.id)
    if mode is ClaimMode.WINDOW:
        ids = list(
            await session.scalars(select(table.c.id).where(ready).order_by(table.c.id).limit(limit))
        )
        if not ids:
            return []
        statement = statement.where(table.c.id.in_(ids)).with_for_update(skip_locked=True)
    elif mode is ClaimMode.SKIP_LOCKED:
        statement = statement.limit(limit).with_for_update(skip_locked=True)
    else:
        statement = statement.limit(limit)
    result = await session.execute(statement)
    return [
        SubtaskRef(**{**row._asdict(), "operation": SubtaskOperation(row.operation)})
        for row in result
    ]


async def renew_leases(
    session: AsyncSession, tokens: Collection[str], *, deadline: datetime
) -> dict[str, HeldLease]:
    """Extends the leases still held; returns, by token, the rows that still carry one (a
    missing token is a lost lease)."""
    if not tokens:
        return {}
    await session.execute(
        update(Sub)
        .where(Sub.lease_token.in_(list(tokens)), Sub.status.in_(HELD))
        .values(lease_deadline=deadline)
        .execution_options(synchronize_session=False)
    )
    return await held_rows(session, tokens)


async def held_rows(session: AsyncSession, tokens: Collection[str]) -> dict[str, HeldLease]:
    if not tokens:
        return {}
    result = await session.execute(
        select(Sub.lease_token, Sub.id, Sub.status, Sub.version).where(
            Sub.lease_token.in_(list(tokens))
        )
    )
    return {str(t): HeldLease(int(i), str(s), int(v)) for t, i, s, v in result.all()}


async def expired_leases(
    session: AsyncSession, *, now: datetime, limit: int = 500
) -> list[SubtaskInstance]:
    rows = await session.scalars(
        select(Sub)
        .where(
            Sub.status.in_(HELD),
            or_(Sub.lease_deadline.is_(None), Sub.lease_deadline < now),
        )
        .order_by(Sub.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def previous_boot_leases(
    session: AsyncSession, *, executor: str, host: str, boot: str
) -> list[SubtaskInstance]:
    """Subtasks held by instance `executor` on machine `host` in a boot other than `boot`:
    at most its previous boots' worker pools."""
    rows = await session.scalars(
        select(Sub)
        .where(
            Sub.status.in_(HELD),
            Sub.executor == executor,
            Sub.lease_host == host,
            Sub.lease_boot != boot,
        )
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def machine_leases(
    session: AsyncSession, *, machine: str, boot: str
) -> list[SubtaskInstance]:
    """Subtasks held by a process on machine `machine` other than boot `boot`: the other
    instances' on this machine, whatever their names, and this instance's previous boots'."""
    rows = await session.scalars(
        select(Sub)
        .where(Sub.status.in_(HELD), Sub.lease_machine == machine, Sub.lease_boot != boot)
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def database_utc_now(session: AsyncSession, dialect: str) -> datetime | None:
    """The metadb's clock (naive UTC), or None where the metadb is local (SQLite)."""
    if dialect == "postgresql":
        value = await session.scalar(text("SELECT clock_timestamp() AT TIME ZONE 'UTC'"))
    elif dialect == "mysql":
        value = await session.scalar(text("SELECT UTC_TIMESTAMP(6)"))
    else:
        return None
    return value if isinstance(value, datetime) else None


async def server_version(session: AsyncSession) -> str:
    return str(await session.scalar(text("SELECT version()")) or "")
