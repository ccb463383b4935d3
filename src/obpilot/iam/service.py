"""Identity-and-access rules: users, roles, access keys, console sessions, the audit log and
the first administrator.

Nobody can hand out more than they hold: creating a role, or giving a user a role, needs
every permission involved to be covered by the caller's own permissions. Nobody can manage
a user who holds more than they do: resetting another user's password, changing their
status, roles or access keys, unlocking or deleting them needs every permission of that user
too. At least one enabled user always keeps the ADMIN role."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.errors import (
    AccessKeyNotFound,
    BadRequest,
    Conflict,
    DuplicateName,
    Forbidden,
    RoleNotFound,
    UserNotFound,
)
from obpilot.iam import passwords, signatures
from obpilot.iam.models import AccessKey, AuditEvent, ConsoleSession, Role, User
from obpilot.iam.permissions import Permission, Principal, instance_prefix
from obpilot.iam.repository import (
    AccessKeyRepository,
    AuditRepository,
    RoleRepository,
    SessionRepository,
    UserRepository,
)
from obpilot.iam.schemas import RoleCreate, RoleUpdate, UserCreate
from obpilot.logging import get_logger
from obpilot.paging import PageRequest
from obpilot.secretbox import SecretBox

log = get_logger(__name__)

ADMIN_USERNAME = "admin"
ADMIN_ROLE = "ADMIN"
MAX_ACCESS_KEYS_PER_USER = 5


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- users ----------------------------------------------------------------------------


async def list_users(
    session: AsyncSession, *, page: PageRequest, keyword: str | None
) -> tuple[list[User], int]:
    return await UserRepository(session).page(page, keyword=keyword)


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await UserRepository(session).get(user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


async def get_principal_user(session: AsyncSession, *, principal: Principal) -> User:
    return await get_user(session, user_id=principal.id)


def _not_held(actor: Principal, expressions: Iterable[str]) -> list[str]:
    return sorted({e for e in expressions if not actor.permissions.allows(Permission.parse(e))})


def _check_grantable(actor: Principal, roles: Sequence[Role]) -> None:
    for role in roles:
        missing = _not_held(actor, role.expressions)
        if missing:
            raise Forbidden(
                f"You cannot grant role {role.name}: it holds permissions you do not have "
                f"({', '.join(missing)})"
            )


def _check_manageable(actor: Principal, user: User) -> None:
    """Acting on another user needs every permission that user holds: otherwise taking over
    (or locking out) a more powerful account would be a way up. One's own account follows
    the rules of each action instead."""
    if user.id == actor.id:
        return
    missing = _not_held(actor, (e for role in user.roles for e in role.expressions))
    if missing:
        raise Forbidden(
            f"You cannot manage user {user.username}: they hold permissions you do not have "
            f"({', '.join(missing)})"
        )


async def _roles_named(session: AsyncSession, names: Sequence[str]) -> list[Role]:
    roles = await RoleRepository(session).by_names(names)
    unknown = sorted(set(names) - {r.name for r in roles})
    if unknown:
        raise BadRequest(f"Unknown role(s): {', '.join(unknown)}")
    return roles


async def create_user(session: AsyncSession, *, spec: UserCreate, actor: Principal) -> User:
    users = UserRepository(session)
    passwords.check_strength(spec.password)
    if await users.username_taken(spec.username):
        raise DuplicateName(f"A user named {spec.username!r} already exists")
    roles = await _roles_named(session, spec.roles)
    _check_grantable(actor, roles)
    user = await users.add(
        User(
            username=spec.username,
            password_hash=await passwords.hash_password_async(spec.password),
            email=spec.email,
            enabled=True,
            failed_attempts=0,
        )
    )
    await users.set_roles(user.id, [r.id for r in roles])
    return await get_user(session, user_id=user.id)


async def _ensure_admin_remains(session: AsyncSession, *, user_id: int, losing_admin: bool) -> None:
    if not losing_admin:
        return
    holders = await UserRepository(session).enabled_holders_of(ADMIN_ROLE)
    if holders == [user_id]:
        raise Conflict(
            "This is the last enabled user with the ADMIN role; give the role to another user first"
        )


def _has_admin(user: User) -> bool:
    return any(role.name == ADMIN_ROLE for role in user.roles)


async def update_user(
    session: AsyncSession,
    *,
    user_id: int,
    email: str | None,
    enabled: bool | None,
    fields: Collection[str],
    actor: Principal,
    cache: passwords.VerifiedPasswordCache,
) -> User:
    user = await get_user(session, user_id=user_id)
    _check_manageable(actor, user)
    if "email" in fields:
        user.email = email
    if "enabled" in fields and enabled is not None and enabled != user.enabled:
        if not enabled:
            if user.id == actor.id:
                raise BadRequest("You cannot disable your own account")
            await _ensure_admin_remains(session, user_id=user.id, losing_admin=_has_admin(user))
            await SessionRepository(session).delete_for_user(user.id)
            cache.forget_user(user.id)
        user.enabled = enabled
    user.update_time = utcnow()
    await session.flush()
    return user


async def unlock_user(session: AsyncSession, *, user_id: int, actor: Principal) -> User:
    user = await get_user(session, user_id=user_id)
    _check_manageable(actor, user)
    await UserRepository(session).clear_failures(user.id)
    await session.refresh(user)
    return user


async def delete_user(
    session: AsyncSession,
    *,
    user_id: int,
    actor: Principal,
    cache: passwords.VerifiedPasswordCache,
) -> None:
    user = await get_user(session, user_id=user_id)
    if user.id == actor.id:
        raise BadRequest("You cannot delete your own account")
    _check_manageable(actor, user)
    await _ensure_admin_remains(
        session, user_id=user.id, losing_admin=user.enabled and _has_admin(user)
    )
    await UserRepository(session).delete(user)
    cache.forget_user(user.id)


async def _store_password(
    session: AsyncSession, user: User, new_password: str, cache: passwords.VerifiedPasswordCache
) -> None:
    passwords.check_strength(new_password)
    user.password_hash = await passwords.hash_password_async(new_password)
    user.update_time = utcnow()
    await session.flush()
    cache.forget_user(user.id)


async def reset_password(
    session: AsyncSession,
    *,
    user_id: int,
    new_password: str,
    actor: Principal,
    cache: passwords.VerifiedPasswordCache,
) -> None:
    """An administrator sets a user's password. A reset is how a leaked account is taken
    back, so everything the old password could have opened goes: every console session and
    every access key of the user."""
    user = await get_user(session, user_id=user_id)
    _check_manageable(actor, user)
    await _store_password(session, user, new_password, cache)
    await SessionRepository(session).delete_for_user(user.id)
    await AccessKeyRepository(session).delete_for_user(user.id)


async def change_own_password(
    session: AsyncSession,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
    cache: passwords.VerifiedPasswordCache,
) -> None:
    user = await get_user(session, user_id=principal.id)
    if not await passwords.verify_password_async(user.password_hash, current_password):
        raise BadRequest("The current password is wrong")
    if current_password == new_password:
        raise BadRequest("The new password must differ from the current one")
    await _store_password(session, user, new_password, cache)
    # The user's own change keeps their access keys and this session; other sessions end.
    await SessionRepository(session).delete_for_user(user.id, keep=principal.session_id)


async def set_user_roles(
    session: AsyncSession, *, user_id: int, names: Sequence[str], actor: Principal
) -> User:
    user = await get_user(session, user_id=user_id)
    _check_manageable(actor, user)
    roles = await _roles_named(session, names)
    current = {r.name for r in user.roles}
    _check_grantable(actor, [r for r in roles if r.name not in current])
    # Taking a role away needs the same standing as giving it.
    _check_grantable(actor, [r for r in user.roles if r.name not in set(names)])
    losing_admin = ADMIN_ROLE in current and ADMIN_ROLE not in names and user.enabled
    await _ensure_admin_remains(session, user_id=user.id, losing_admin=losing_admin)
    await UserRepository(session).set_roles(user.id, [r.id for r in roles])
    user.update_time = utcnow()
    await session.flush()
    session.expunge(user)
    return await get_user(session, user_id=user.id)


# ---- roles ----------------------------------------------------------------------------


async def list_roles(
    session: AsyncSession, *, page: PageRequest, builtin: bool | None
) -> tuple[list[Role], int]:
    return await RoleRepository(session).page(page, builtin=builtin)


async def get_role(session: AsyncSession, *, role_id: int) -> Role:
    role = await RoleRepository(session).get(role_id)
    if role is None:
        raise RoleNotFound(role_id)
    return role


def _check_expressions_held(actor: Principal, expressions: Sequence[str]) -> None:
    missing = _not_held(actor, expressions)
    if missing:
        raise Forbidden(f"You cannot grant permissions you do not have: {', '.join(missing)}")


def _editable(role: Role) -> None:
    if role.builtin:
        raise BadRequest(f"Role {role.name} is a default role; default roles cannot be changed")


async def create_role(session: AsyncSession, *, spec: RoleCreate, actor: Principal) -> Role:
    roles = RoleRepository(session)
    if await roles.get_by_name(spec.name) is not None:
        raise DuplicateName(f"A role named {spec.name!r} already exists")
    _check_expressions_held(actor, spec.permissions)
    role = await roles.add(Role(name=spec.name, description=spec.description, builtin=False))
    await roles.set_permissions(role, spec.permissions)
    session.expunge(role)
    return await get_role(session, role_id=role.id)


async def update_role(
    session: AsyncSession, *, role_id: int, spec: RoleUpdate, actor: Principal
) -> Role:
    roles = RoleRepository(session)
    role = await get_role(session, role_id=role_id)
    _editable(role)
    fields = spec.model_fields_set
    if "description" in fields:
        role.description = spec.description
    if "permissions" in fields:
        if spec.permissions is None:
            raise BadRequest("permissions: a role needs at least one permission")
        changed = set(spec.permissions) ^ set(role.expressions)
        _check_expressions_held(actor, sorted(changed))
        await roles.set_permissions(role, spec.permissions)
    role.update_time = utcnow()
    await session.flush()
    session.expunge(role)
    return await get_role(session, role_id=role_id)


async def delete_role(session: AsyncSession, *, role_id: int) -> None:
    roles = RoleRepository(session)
    role = await get_role(session, role_id=role_id)
    _editable(role)
    holders = await roles.count_users(role.id)
    if holders:
        raise Conflict(f"Role {role.name} is held by {holders} user(s); take it from them first")
    await roles.delete(role)


async def drop_cluster_grants(session: AsyncSession, *, cluster_id: int) -> None:
    """Drops every role's grants on a cluster that obpilot forgets (`CLUSTER:7:READ`,
    `CLUSTER:7:TENANT:*:READ`), in the transaction that forgets it. No metadb gives the id
    again, but a grant left behind would pass to a cluster that got it all the same: from a
    metadb restored from a dump, or from MySQL before 8.0, whose counters restart from the
    highest id. A role left without grants stays, granting nothing."""
    dropped = await RoleRepository(session).delete_permissions_starting(
        instance_prefix("CLUSTER", cluster_id)
    )
    if dropped:
        log.info(
            "grants on a forgotten cluster dropped",
            cluster_id=cluster_id,
            grants=[f"{role}: {expression}" for role, expression in dropped],
        )


# ---- access keys ----------------------------------------------------------------------


async def create_access_key(
    session: AsyncSession, *, principal: Principal, secret_box: SecretBox
) -> tuple[AccessKey, str]:
    keys = AccessKeyRepository(session)
    if len(await keys.for_user(principal.id)) >= MAX_ACCESS_KEYS_PER_USER:
        raise Conflict(
            f"A user can have at most {MAX_ACCESS_KEYS_PER_USER} access keys; delete one first"
        )
    access_key_id, secret = signatures.new_access_key()
    key = await keys.add(
        AccessKey(
            access_key_id=access_key_id,
            user_id=principal.id,
            secret_encrypted=secret_box.encrypt(secret),
        )
    )
    return key, secret


async def list_access_keys(session: AsyncSession, *, principal: Principal) -> list[AccessKey]:
    return await AccessKeyRepository(session).for_user(principal.id)


async def list_user_access_keys(session: AsyncSession, *, user_id: int) -> list[AccessKey]:
    user = await get_user(session, user_id=user_id)
    return await AccessKeyRepository(session).for_user(user.id)


async def _delete_key_of(session: AsyncSession, user_id: int, access_key_id: str) -> None:
    keys = AccessKeyRepository(session)
    key = await keys.get(access_key_id)
    # Another user's key is answered like a missing one.
    if key is None or key.user_id != user_id:
        raise AccessKeyNotFound(access_key_id)
    await keys.delete(key)


async def delete_access_key(
    session: AsyncSession, *, principal: Principal, access_key_id: str
) -> None:
    await _delete_key_of(session, principal.id, access_key_id)


async def delete_user_access_key(
    session: AsyncSession, *, user_id: int, access_key_id: str, actor: Principal
) -> None:
    user = await get_user(session, user_id=user_id)
    _check_manageable(actor, user)
    await _delete_key_of(session, user.id, access_key_id)


# ---- console sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    id: int
    token: str
    csrf_token: str
    expires_at: datetime


async def open_session(
    session: AsyncSession, *, user_id: int, lifetime: timedelta, source_address: str | None
) -> NewSession:
    now = utcnow()
    sessions = SessionRepository(session)
    await sessions.delete_expired(now)
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    row = await sessions.add(
        ConsoleSession(
            token_hash=token_hash(token),
            csrf_hash=token_hash(csrf_token),
            user_id=user_id,
            source_address=source_address,
            create_time=now,
            expires_at=expires_at,
        )
    )
    return NewSession(id=row.id, token=token, csrf_token=csrf_token, expires_at=expires_at)


async def close_session(session: AsyncSession, *, session_id: int) -> None:
    await SessionRepository(session).delete(session_id)


# ---- audit ----------------------------------------------------------------------------


async def record_audit_event(session: AsyncSession, *, event: AuditEvent) -> None:
    await AuditRepository(session).add(event)


async def list_audit_events(
    session: AsyncSession,
    *,
    page: PageRequest,
    username: str | None,
    action: str | None,
    result: str | None,
    resource: str | None,
    start_time: datetime | None,
    end_time: datetime | None,
) -> tuple[list[AuditEvent], int]:
    return await AuditRepository(session).page(
        page,
        username=username,
        action=action,
        result=result,
        resource=resource,
        start_time=start_time,
        end_time=end_time,
    )


# ---- the first administrator ----------------------------------------------------------


async def ensure_first_admin(database: Database, *, password: str | None) -> FirstAdmin:
    """On a metadb without users, creates `admin` with the ADMIN role, with `password` or a
    generated one. Safe when several instances start at once: the unique username lets
    exactly one of them create it, and only that one reports a generated password."""
    async with database.transaction() as session:
        if await UserRepository(session).count() > 0:
            return FirstAdmin(created=False)
    chosen = password if password is not None else passwords.generate_password()
    password_hash = await passwords.hash_password_async(chosen)
    try:
        async with database.transaction(write=True) as session:
            users = UserRepository(session)
            if await users.count() > 0:
                return FirstAdmin(created=False)
            admin_role = await RoleRepository(session).get_by_name(ADMIN_ROLE)
            if admin_role is None:
                raise RuntimeError("the ADMIN role is missing: is the metadb migrated?")
            user = await users.add(
                User(
                    username=ADMIN_USERNAME,
                    password_hash=password_hash,
                    enabled=True,
                    failed_attempts=0,
                )
            )
            await users.set_roles(user.id, [admin_role.id])
    except IntegrityError:
        return FirstAdmin(created=False)  # another instance created it at the same moment
    return FirstAdmin(created=True, generated_password=None if password is not None else chosen)


@dataclass(frozen=True)
class FirstAdmin:
    created: bool
    generated_password: str | None = None
