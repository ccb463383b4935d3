"""All identity-and-access SQL. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, literal, null, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from obpilot.iam.models import (
    AccessKey,
    AuditEvent,
    ConsoleSession,
    Role,
    RolePermission,
    User,
    UserRole,
)
from obpilot.paging import PageRequest

SortColumns = dict[str, InstrumentedAttribute[Any]]


@dataclass(frozen=True)
class CountedAttempt:
    """A password attempt counted before verification: its number in the current run of
    failures, and the lock it set when it was the last one allowed."""

    number: int
    locked_until: datetime | None


USER_SORT: SortColumns = {
    "id": User.id,
    "username": User.username,
    "createTime": User.create_time,
}
ROLE_SORT: SortColumns = {"id": Role.id, "name": Role.name, "createTime": Role.create_time}
AUDIT_SORT: SortColumns = {
    "id": AuditEvent.id,
    "eventTime": AuditEvent.event_time,
    "username": AuditEvent.username,
    "action": AuditEvent.action,
}


async def _page(
    session: AsyncSession,
    statement: Any,
    page: PageRequest,
    columns: SortColumns,
    default_order: Sequence[Any] = (),
) -> tuple[list[Any], int]:
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    order = [columns[s.field].desc() if s.descending else columns[s.field].asc() for s in page.sort]
    # The primary key ends every ORDER BY so that pages are stable.
    rows = await session.scalars(
        statement.order_by(*(order or default_order), columns["id"].asc())
        .offset(page.offset)
        .limit(page.size)
    )
    return list(rows), int(total or 0)


def _exactly_named(user: User | None, username: str) -> User | None:
    """Some collations compare names loosely (case, trailing spaces); a login name must be
    exactly the stored one."""
    return user if user is not None and user.username == username else None


def _with_roles() -> Any:
    return selectinload(User.roles).selectinload(Role.permissions)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        return await self.session.scalar(
            select(User).where(User.id == user_id).options(_with_roles())
        )

    async def get_by_username(self, username: str) -> User | None:
        return _exactly_named(
            await self.session.scalar(
                select(User).where(User.username == username).options(_with_roles())
            ),
            username,
        )

    async def get_bare_by_username(self, username: str) -> User | None:
        """The user row without roles: the authentication fast path."""
        return _exactly_named(
            await self.session.scalar(select(User).where(User.username == username)), username
        )

    async def username_taken(self, username: str) -> bool:
        """Whether the unique index would refuse this name: on MySQL-family metadbs it is
        case-insensitive, so `ADMIN` is taken when `admin` exists."""
        found = await self.session.scalar(select(User.id).where(User.username == username))
        return found is not None

    async def get_bare(self, user_id: int) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id))

    async def permission_expressions(self, user_id: int) -> list[str]:
        rows = await self.session.scalars(
            select(RolePermission.expression)
            .join(UserRole, UserRole.role_id == RolePermission.role_id)
            .where(UserRole.user_id == user_id)
            .distinct()
        )
        return list(rows)

    async def page(self, page: PageRequest, *, keyword: str | None) -> tuple[list[User], int]:
        statement = select(User).options(_with_roles())
        if keyword:
            statement = statement.where(
                User.username.icontains(keyword, autoescape=True)
                | User.email.icontains(keyword, autoescape=True)
            )
        return await _page(self.session, statement, page, USER_SORT)

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def delete(self, user: User) -> None:
        await self.session.execute(delete(User).where(User.id == user.id))

    async def set_roles(self, user_id: int, role_ids: Sequence[int]) -> None:
        await self.session.execute(delete(UserRole).where(UserRole.user_id == user_id))
        for role_id in sorted(set(role_ids)):
            self.session.add(UserRole(user_id=user_id, role_id=role_id))
        await self.session.flush()

    async def enabled_holders_of(self, role_name: str) -> list[int]:
        rows = await self.session.scalars(
            select(User.id)
            .join(UserRole, UserRole.user_id == User.id)
            .join(Role, Role.id == UserRole.role_id)
            .where(Role.name == role_name, User.enabled.is_(True))
        )
        return list(rows)

    async def take_login_attempt(
        self, user_id: int, *, now: datetime, allowed: int, lock_until: datetime
    ) -> CountedAttempt | None:
        """Counts a password attempt before it is verified, in one conditional UPDATE, so
        that concurrent attempts cannot all pass a check made before any of them counted.
        The attempt that reaches `allowed` locks the account until `lock_until` (and the
        count starts again when that lock ends). None when the account is locked: nothing
        was counted."""
        reaches_limit = User.failed_attempts + 1 >= allowed
        statement = (
            update(User)
            .where(
                User.id == user_id,
                or_(User.locked_until.is_(None), User.locked_until <= now),
            )
            # MySQL assigns left to right, each assignment seeing the ones before it: the
            # lock is decided on the count before it changes.
            .ordered_values(
                (
                    User.locked_until,
                    case(
                        (reaches_limit, literal(lock_until, User.__table__.c.locked_until.type)),
                        else_=null(),
                    ),
                ),
                (User.failed_attempts, case((reaches_limit, 0), else_=User.failed_attempts + 1)),
            )
            .execution_options(synchronize_session=False)
        )
        result: CursorResult[Any] = await self.session.execute(statement)  # type: ignore[assignment]
        if result.rowcount == 0:
            return None
        # This transaction holds the row's write lock: the row is still as the UPDATE left it.
        failures, locked_until = (
            await self.session.execute(
                select(User.failed_attempts, User.locked_until).where(User.id == user_id)
            )
        ).one()
        if locked_until is not None:
            return CountedAttempt(number=allowed, locked_until=locked_until)
        return CountedAttempt(number=int(failures), locked_until=None)

    async def locked_until(self, user_id: int) -> datetime | None:
        return await self.session.scalar(select(User.locked_until).where(User.id == user_id))

    async def clear_failures(self, user_id: int) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(failed_attempts=0, locked_until=None)
            .execution_options(synchronize_session=False)
        )

    async def set_last_login(self, user_id: int, at: datetime) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(last_login_time=at)
            .execution_options(synchronize_session=False)
        )


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, role_id: int) -> Role | None:
        return await self.session.scalar(
            select(Role).where(Role.id == role_id).options(selectinload(Role.permissions))
        )

    async def get_by_name(self, name: str) -> Role | None:
        return await self.session.scalar(
            select(Role).where(Role.name == name).options(selectinload(Role.permissions))
        )

    async def by_names(self, names: Sequence[str]) -> list[Role]:
        if not names:
            return []
        rows = await self.session.scalars(
            select(Role).where(Role.name.in_(list(names))).options(selectinload(Role.permissions))
        )
        return list(rows)

    async def page(self, page: PageRequest, *, builtin: bool | None) -> tuple[list[Role], int]:
        statement = select(Role).options(selectinload(Role.permissions))
        if builtin is not None:
            statement = statement.where(Role.builtin.is_(builtin))
        return await _page(self.session, statement, page, ROLE_SORT, [Role.name.asc()])

    async def add(self, role: Role) -> Role:
        self.session.add(role)
        await self.session.flush()
        return role

    async def set_permissions(self, role: Role, expressions: Sequence[str]) -> None:
        await self.session.execute(delete(RolePermission).where(RolePermission.role_id == role.id))
        for expression in sorted(set(expressions)):
            self.session.add(RolePermission(role_id=role.id, expression=expression))
        await self.session.flush()

    async def delete_permissions_starting(self, prefix: str) -> list[tuple[str, str]]:
        """Deletes every role's grants that start with `prefix`: the (role name, grant) pairs
        it deleted."""
        named = RolePermission.expression.startswith(prefix, autoescape=True)
        deleted = [
            (name, expression)
            for name, expression in await self.session.execute(
                select(Role.name, RolePermission.expression)
                .join(Role, Role.id == RolePermission.role_id)
                .where(named)
                .order_by(Role.name, RolePermission.expression)
            )
        ]
        if deleted:
            await self.session.execute(
                delete(RolePermission).where(named).execution_options(synchronize_session=False)
            )
        return deleted

    async def count_users(self, role_id: int) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).select_from(UserRole).where(UserRole.role_id == role_id)
            )
            or 0
        )

    async def delete(self, role: Role) -> None:
        await self.session.execute(delete(Role).where(Role.id == role.id))


class AccessKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, access_key_id: str) -> AccessKey | None:
        return await self.session.scalar(
            select(AccessKey).where(AccessKey.access_key_id == access_key_id)
        )

    async def for_user(self, user_id: int) -> list[AccessKey]:
        rows = await self.session.scalars(
            select(AccessKey).where(AccessKey.user_id == user_id).order_by(AccessKey.id)
        )
        return list(rows)

    async def add(self, key: AccessKey) -> AccessKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def delete(self, key: AccessKey) -> None:
        await self.session.execute(delete(AccessKey).where(AccessKey.id == key.id))

    async def delete_for_user(self, user_id: int) -> None:
        await self.session.execute(delete(AccessKey).where(AccessKey.user_id == user_id))


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_live(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        return await self.session.scalar(
            select(ConsoleSession).where(
                ConsoleSession.token_hash == token_hash, ConsoleSession.expires_at > now
            )
        )

    async def add(self, console_session: ConsoleSession) -> ConsoleSession:
        self.session.add(console_session)
        await self.session.flush()
        return console_session

    async def delete(self, session_id: int) -> None:
        await self.session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))

    async def delete_for_user(self, user_id: int, *, keep: int | None = None) -> None:
        statement = delete(ConsoleSession).where(ConsoleSession.user_id == user_id)
        if keep is not None:
            statement = statement.where(ConsoleSession.id != keep)
        await self.session.execute(statement)

    async def delete_expired(self, now: datetime) -> None:
        await self.session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def page(
        self,
        page: PageRequest,
        *,
        username: str | None,
        action: str | None,
        result: str | None,
        resource: str | None,
        start_time: datetime | None,
        end_time: datetime | None,
    ) -> tuple[list[AuditEvent], int]:
        statement = select(AuditEvent)
        if username:
            statement = statement.where(AuditEvent.username == username)
        if action:
            statement = statement.where(AuditEvent.action == action)
        if result:
            statement = statement.where(AuditEvent.result == result)
        if resource:
            statement = statement.where(AuditEvent.resource.icontains(resource, autoescape=True))
        if start_time:
            statement = statement.where(AuditEvent.event_time >= start_time)
        if end_time:
            statement = statement.where(AuditEvent.event_time < end_time)
        # Newest first unless the caller sorts otherwise.
        return await _page(self.session, statement, page, AUDIT_SORT, [AuditEvent.id.desc()])
