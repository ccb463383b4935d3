"""Permission expressions: parsing, matching (management does not imply READ), and the
default roles as the migration stored them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from obpilot.db.engine import Database
from obpilot.iam.models import Role
from obpilot.iam.permissions import (
    DEFAULT_ROLES,
    InvalidPermission,
    Permission,
    PermissionSet,
)


def allows(grants: list[str], needed: str) -> bool:
    return PermissionSet.parse(grants).allows(Permission.parse(needed))


@pytest.mark.parametrize(
    ("grants", "needed", "expected"),
    [
        (["**"], "CLUSTER:5:UPDATE", True),
        (["**"], "CLUSTER:5:TENANT:7:READ", True),
        (["CLUSTER:*:READ"], "CLUSTER:5:READ", True),
        (["CLUSTER:*:READ"], "CLUSTER:5:UPDATE", False),
        (["CLUSTER:5:UPDATE"], "CLUSTER:5:UPDATE", True),
        (["CLUSTER:5:UPDATE"], "CLUSTER:5:READ", False),  # management does not imply READ
        (["CLUSTER:5:UPDATE"], "CLUSTER:6:UPDATE", False),
        (["CLUSTER:5:*"], "CLUSTER:5:DELETE", True),
        (["CLUSTER:*:*"], "CLUSTER:9:TENANT:1:UPDATE", True),
        (["CLUSTER:*:TENANT:*:READ"], "CLUSTER:9:TENANT:1:READ", True),
        (["CLUSTER:*:TENANT:*:READ"], "CLUSTER:9:READ", False),
        (["CLUSTER:*:READ"], "CLUSTER:9:TENANT:1:READ", False),
        (["TASK:*:*"], "TASK:*:UPDATE", True),
        (["TASK:*:READ"], "TASK:*:UPDATE", False),
        (["HOST:*:READ", "TASK:*:READ"], "HOST:*:CREATE", False),
        ([], "PROFILE:*:READ", False),
    ],
)
def test_matching(grants: list[str], needed: str, expected: bool) -> None:
    assert allows(grants, needed) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "*",
        "CLUSTER",
        "CLUSTER:*",
        "CLUSTER:*:READ:x",
        "cluster:*:READ",
        "CLUSTER:x:READ",
        "NOPE:*:READ",
        "CLUSTER:*:FLY",
        "CLUSTER:0:READ",
        "CLUSTER:*:TENANT:READ",
        "***",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(InvalidPermission):
        Permission.parse(expression)


def test_round_trip() -> None:
    for expression in ("**", "CLUSTER:12:UPDATE", "CLUSTER:*:BACKUP:*:*", "USER:*:READ"):
        assert str(Permission.parse(expression)) == expression


def test_default_roles_are_ocps_twenty_one() -> None:
    assert len(DEFAULT_ROLES) == 21
    for _, expressions in DEFAULT_ROLES.values():
        for expression in expressions:
            Permission.parse(expression)


async def test_migration_stored_the_default_roles(any_database: Database) -> None:
    async with any_database.transaction() as session:
        roles = list(await session.scalars(select(Role).options(selectinload(Role.permissions))))
    stored = {role.name: sorted(role.expressions) for role in roles if role.builtin}
    assert stored == {name: sorted(perms) for name, (_, perms) in DEFAULT_ROLES.items()}
    assert all(role.builtin for role in roles)
