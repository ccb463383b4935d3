"""Identity-and-access shapes on the wire. No output shape has a password or a secret field,
except `AccessKeyCreated`, which is answered once."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, field_serializer

from obpilot.api.envelope import CamelModel
from obpilot.formats import format_time
from obpilot.iam.models import AccessKey, AuditEvent, Role, User
from obpilot.iam.permissions import InvalidPermission, Permission

# Always applied with fullmatch: `$` would also accept a trailing newline ("admin\n").
USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.@-]{1,63}")
ROLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}[A-Za-z0-9]")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _username(value: str) -> str:
    if not USERNAME.fullmatch(value):
        raise ValueError(
            "a username has 2-64 characters: a letter, then letters, digits or _ . @ -"
        )
    return value


def _email(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    assert value is not None
    if len(value) > 128 or not EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _role_name(value: str) -> str:
    if not ROLE_NAME.fullmatch(value):
        raise ValueError(
            "a role name has 2-32 characters of letters, digits and _, starts with a letter "
            "and ends with a letter or digit"
        )
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _expression(value: str) -> str:
    try:
        return str(Permission.parse(value))
    except InvalidPermission as error:
        raise ValueError(str(error)) from None


Username = Annotated[str, AfterValidator(_username)]
Email = Annotated[str | None, AfterValidator(_email)]
RoleName = Annotated[str, AfterValidator(_role_name)]
RoleNames = Annotated[list[RoleName], Field(max_length=64), AfterValidator(_unique)]
Expressions = Annotated[
    list[Annotated[str, AfterValidator(_expression)]],
    Field(
        min_length=1,
        max_length=256,
        description="Permission expressions, e.g. CLUSTER:3:READ, CLUSTER:3:UPDATE.",
    ),
    AfterValidator(lambda values: sorted(set(values))),
]


class Times(CamelModel):
    create_time: datetime
    update_time: datetime

    @field_serializer("create_time", "update_time")
    def _render_time(self, value: datetime) -> str:
        return format_time(value)


class RoleRef(CamelModel):
    id: int
    name: str


class UserOut(Times):
    id: int
    username: str
    email: str | None
    enabled: bool
    locked: bool = Field(description="True while the account is locked after failed logins.")
    locked_until: str | None
    last_login_time: str | None
    roles: list[RoleRef]


class MeOut(UserOut):
    permissions: list[str] = Field(description="The union of the user's roles' permissions.")


def user_out(user: User, now: datetime) -> UserOut:
    locked = user.locked_until is not None and user.locked_until > now
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        enabled=user.enabled,
        locked=locked,
        locked_until=format_time(user.locked_until) if locked and user.locked_until else None,
        last_login_time=format_time(user.last_login_time) if user.last_login_time else None,
        roles=[RoleRef(id=r.id, name=r.name) for r in user.roles],
        create_time=user.create_time,
        update_time=user.update_time,
    )


class UserCreate(CamelModel):
    username: Username
    password: str = Field(min_length=1, max_length=128)
    email: Email = None
    roles: RoleNames = Field(default_factory=list)


class UserUpdate(CamelModel):
    """Only the fields given change; `"email": ""` or null clears the e-mail address."""

    email: Email = None
    enabled: bool | None = None


class PasswordReset(CamelModel):
    """An administrator sets another user's password."""

    new_password: str = Field(min_length=1, max_length=128)


class PasswordChange(CamelModel):
    """A user changes their own password."""

    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=1, max_length=128)


class RolesSet(CamelModel):
    roles: RoleNames


class RoleOut(Times):
    id: int
    name: str
    description: str | None
    builtin: bool = Field(description="Default roles cannot be edited or deleted.")
    permissions: list[str]


def role_out(role: Role) -> RoleOut:
    return RoleOut(
        id=role.id,
        name=role.name,
        description=role.description,
        builtin=role.builtin,
        permissions=role.expressions,
        create_time=role.create_time,
        update_time=role.update_time,
    )


class RoleCreate(CamelModel):
    name: RoleName
    description: str | None = Field(default=None, max_length=256)
    permissions: Expressions


class RoleUpdate(CamelModel):
    """Only the fields given change."""

    description: str | None = Field(default=None, max_length=256)
    permissions: Expressions | None = None


class AccessKeyOut(CamelModel):
    access_key_id: str
    create_time: str


def access_key_out(key: AccessKey) -> AccessKeyOut:
    return AccessKeyOut(access_key_id=key.access_key_id, create_time=format_time(key.create_time))


class AccessKeyCreated(CamelModel):
    access_key_id: str
    access_key_secret: str = Field(description="Shown once; obpilot cannot show it again.")


class LoginRequest(CamelModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class AuditEventOut(CamelModel):
    id: int
    event_time: str
    user_id: int | None
    username: str | None
    auth_method: str | None
    action: str
    method: str
    resource: str
    source_address: str | None
    result: str
    status: int
    error_code: str | None
    trace_id: str


def audit_event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        event_time=format_time(event.event_time),
        user_id=event.user_id,
        username=event.username,
        auth_method=event.auth_method,
        action=event.action,
        method=event.method,
        resource=event.resource,
        source_address=event.source_address,
        result=event.result,
        status=event.status,
        error_code=event.error_code,
        trace_id=event.trace_id,
    )
