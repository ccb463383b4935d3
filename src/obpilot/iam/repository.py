"""All identity-and-access SQL. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from obpilot.api.pagination import PageRequest
from obpilot.iam.models import (
    AccessKey,
    AuditEvent,
    ConsoleSession,
    Role,
    RolePermission,
    User,
    UserRole,
)

SortColumns = dict[str, InstrumentedAttribute[Any]]

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
        return await self.session.scalar(
            select(User).where(User.username == username).options(_with_roles())
        )

    async def get_bare_by_username(self, username: str) -> User | None:
        """The user row without roles: the authentication fast path."""
        return await self.session.scalar(select(User).where(User.username == username))

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

    async def record_failure(self, user_id: int) -> int:
        """Counts a failed login atomically; returns the new count."""
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(failed_attempts=User.failed_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return int(
            await self.session.scalar(select(User.failed_attempts).where(User.id == user_id)) or 0
        )

    async def lock(self, user_id: int, until: datetime) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(failed_attempts=0, locked_until=until)
            .execution_options(synchronize_session=False)
        )

    async def clear_failures(self, user_id: int, *, login_time: datetime | None = None) -> None:
        values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
        if login_time is not None:
            values["last_login_time"] = login_time
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(**values)
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
