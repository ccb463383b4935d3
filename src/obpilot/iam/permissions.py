"""Permission expressions in OCP's form and the checks on them.

An expression is `RESOURCE:<id|*>:ACTION`, possibly nested (`CLUSTER:*:TENANT:*:READ`), or
`**` for everything. A grant covers a required permission when every resource/id pair
matches (`*` matches any id) and the action matches (`*` matches any action). A grant whose
action is `*` also covers the nested resources under it (`CLUSTER:*:*` covers
`CLUSTER:5:TENANT:7:READ`), because "all on a cluster" includes what lives in it. Nothing
else implies anything: UPDATE does not imply READ, as in OCP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

ALL = "**"
ANY = "*"

ACTIONS = ("READ", "CREATE", "UPDATE", "DELETE", "CREATE_TENANT")
RESOURCES = (
    "ALARM",
    "AUDIT",
    "BACKUP",
    "CLUSTER",
    "HOST",
    "INSPECTION",
    "OBPROXY",
    "PACKAGE",
    "PROFILE",
    "PROPERTY",
    "ROLE",
    "TASK",
    "TENANT",
    "USER",
)

_SEGMENT = re.compile(r"\*|[A-Z][A-Z_]*|[1-9][0-9]{0,18}")


class InvalidPermission(ValueError):
    pass


@dataclass(frozen=True)
class Permission:
    """A parsed expression: `path` is ((resource, id-or-*), ...), `action` an action or *."""

    path: tuple[tuple[str, str], ...]
    action: str

    @classmethod
    def parse(cls, expression: str) -> Permission:
        if expression == ALL:
            return cls(path=(), action=ALL)
        parts = expression.split(":")
        if len(parts) < 3 or len(parts) % 2 == 0:
            raise InvalidPermission(
                f"Invalid permission {expression!r}: use RESOURCE:<id|*>:ACTION, "
                "optionally nested (CLUSTER:*:TENANT:*:READ), or **"
            )
        for part in parts:
            if not _SEGMENT.fullmatch(part):
                raise InvalidPermission(f"Invalid permission {expression!r}: bad part {part!r}")
        resources = parts[0:-1:2]
        ids = parts[1:-1:2]
        for resource in resources:
            if resource not in RESOURCES:
                raise InvalidPermission(
                    f"Invalid permission {expression!r}: unknown resource {resource}"
                )
        action = parts[-1]
        if action != ANY and action not in ACTIONS:
            raise InvalidPermission(f"Invalid permission {expression!r}: unknown action {action}")
        return cls(path=tuple(zip(resources, ids, strict=True)), action=action)

    def __str__(self) -> str:
        if self.action == ALL:
            return ALL
        return ":".join([*(f"{r}:{i}" for r, i in self.path), self.action])

    def covers(self, required: Permission) -> bool:
        if self.action == ALL:
            return True
        if len(self.path) > len(required.path):
            return False
        if len(self.path) < len(required.path) and self.action != ANY:
            return False
        for (resource, granted_id), (needed_resource, needed_id) in zip(
            self.path, required.path, strict=False
        ):
            if resource != needed_resource or granted_id not in (ANY, needed_id):
                return False
        if len(self.path) < len(required.path):
            return True
        return self.action in (ANY, required.action)


def required(resource: str, action: str, resource_id: int | str | None = None) -> Permission:
    """The permission a route needs; `resource_id` None means "on every instance" (`*`)."""
    return Permission(
        path=((resource, ANY if resource_id is None else str(resource_id)),), action=action
    )


def instance_prefix(resource: str, resource_id: int) -> str:
    """What every expression on one instance of a top-level resource, or on what lives in
    it, starts with: `CLUSTER:7:` (`CLUSTER:7:READ`, `CLUSTER:7:TENANT:*:READ`). An id is
    digits without leading zeros (`Permission.parse`), so no other instance's expression
    starts so (`CLUSTER:70:READ` does not)."""
    return f"{resource}:{resource_id}:"


class PermissionSet:
    """The union of a user's grants."""

    def __init__(self, grants: Iterable[Permission]) -> None:
        self.grants = frozenset(grants)

    @classmethod
    def parse(cls, expressions: Iterable[str]) -> PermissionSet:
        return cls(Permission.parse(e) for e in expressions)

    def allows(self, needed: Permission) -> bool:
        return any(grant.covers(needed) for grant in self.grants)

    def allows_somewhere(self, resource: str, action: str) -> bool:
        """True when the action is granted on at least one instance of a top-level resource
        (e.g. READ on some cluster): enough to call a list route, whose answer is filtered."""
        for grant in self.grants:
            if grant.action == ALL:
                return True
            if not grant.path or grant.path[0][0] != resource:
                continue
            if len(grant.path) == 1 and grant.action in (ANY, action):
                return True
        return False

    def instances(self, resource: str, action: str) -> frozenset[int] | None:
        """The ids of the top-level resource the action is granted on; None when it is
        granted on every instance (`*`). (A granted id is digits: `Permission.parse`.)"""
        if self.allows(required(resource, action)):
            return None
        return frozenset(
            int(grant.path[0][1])
            for grant in self.grants
            if len(grant.path) == 1
            and grant.path[0][0] == resource
            and grant.action in (ANY, action)
        )

    def expressions(self) -> list[str]:
        return sorted(str(grant) for grant in self.grants)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a user, with the union of its roles' permissions."""

    id: int
    username: str
    permissions: PermissionSet = field(compare=False)
    method: str = "basic"  # basic | accessKey | session
    session_id: int | None = None


# OCP's default roles (OCP 4.x appendix "Default roles"). They cannot be edited or deleted.
# Migration 0002 inserts exactly these; a test keeps the two in step.
DEFAULT_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ADMIN": ("System administrator: everything", ("**",)),
    "ALARM_MANAGER": (
        "Manage alarms",
        ("ALARM:*:*", "CLUSTER:*:READ", "TENANT:*:READ", "HOST:*:READ", "USER:*:READ"),
    ),
    "ALARM_VIEWER": (
        "View alarms",
        ("ALARM:*:READ", "CLUSTER:*:READ", "TENANT:*:READ", "HOST:*:READ", "USER:*:READ"),
    ),
    "AUDIT_VIEWER": ("View the audit log", ("AUDIT:*:READ",)),
    "BACKUP_MANAGER": (
        "Manage backup and recovery",
        (
            "CLUSTER:*:BACKUP:*:*",
            "CLUSTER:*:READ",
            "CLUSTER:*:TENANT:*:READ",
            "HOST:*:READ",
            "ALARM:*:READ",
            "TASK:*:*",
            "PACKAGE:*:*",
        ),
    ),
    "CLUSTER_MANAGER": (
        "Manage clusters",
        (
            "CLUSTER:*:*",
            "HOST:*:*",
            "TASK:*:*",
            "ALARM:*:*",
            "USER:*:READ",
            "PACKAGE:*:*",
            "OBPROXY:*:*",
        ),
    ),
    "CLUSTER_VIEWER": (
        "View clusters",
        (
            "CLUSTER:*:READ",
            "HOST:*:READ",
            "TASK:*:READ",
            "ALARM:*:READ",
            "PACKAGE:*:READ",
            "OBPROXY:*:READ",
        ),
    ),
    "HOST_MANAGER": ("Manage hosts", ("HOST:*:*", "PACKAGE:*:*")),
    "HOST_VIEWER": ("View hosts", ("HOST:*:READ", "PACKAGE:*:READ")),
    "INSPECTION_MANAGER": ("Manage inspections", ("INSPECTION:*:*",)),
    "OBPROXY_MANAGER": (
        "Manage OBProxy",
        ("OBPROXY:*:*", "PACKAGE:*:*", "CLUSTER:*:READ", "HOST:*:READ"),
    ),
    "OBPROXY_VIEWER": (
        "View OBProxy",
        ("OBPROXY:*:READ", "PACKAGE:*:READ", "CLUSTER:*:READ", "HOST:*:READ"),
    ),
    "PACKAGE_MANAGER": ("Manage software packages", ("PACKAGE:*:*",)),
    "PACKAGE_VIEWER": ("View software packages", ("PACKAGE:*:READ",)),
    "PROFILE": ("Log on and manage one's own profile", ("PROFILE:*:*",)),
    "PROPERTY_MANAGER": ("Manage system parameters", ("PROPERTY:*:*",)),
    "ROLE_MANAGER": ("Manage roles", ("ROLE:*:*",)),
    "TASK_MANAGER": ("Manage tasks", ("TASK:*:*",)),
    "TENANT_MANAGER": (
        "Manage tenants",
        (
            "CLUSTER:*:TENANT:*:*",
            "CLUSTER:*:READ",
            "HOST:*:READ",
            "TASK:*:READ",
            "ALARM:*:READ",
            "OBPROXY:*:READ",
        ),
    ),
    "TENANT_VIEWER": (
        "View tenants",
        (
            "CLUSTER:*:TENANT:*:READ",
            "CLUSTER:*:READ",
            "HOST:*:READ",
            "TASK:*:READ",
            "ALARM:*:READ",
            "OBPROXY:*:READ",
        ),
    ),
    "USER_MANAGER": ("Manage users", ("USER:*:*", "ROLE:*:READ")),
}


PUBLIC = "public"
AUTHENTICATED = "authenticated"

# The permission each route needs. `{id}` is the cluster id in the path: the check is on
# that cluster, and a caller without it gets the same 403 whether or not the cluster exists.
# `{task}` is the cluster the task in the path belongs to (a task of no cluster needs only
# the TASK permission); the task list shows the tasks of the clusters the caller reads.
# Acting on a user (password, status, roles, unlock, keys, delete) also needs every
# permission that user holds.
# "authenticated": any logged-in user (on their own data); "public": no credentials.
# Every other /api/** route needs at least authentication. tests/iam/test_route_permissions.py
# checks this table against the routes' dependencies.
ROUTE_PERMISSIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v2/info"): PUBLIC,
    ("POST", "/api/v2/iam/login"): PUBLIC,
    ("POST", "/api/v2/iam/logout"): AUTHENTICATED,
    ("GET", "/api/v2/iam/users/me"): AUTHENTICATED,
    ("POST", "/api/v2/iam/users/me/changePassword"): AUTHENTICATED,
    ("POST", "/api/v2/iam/accessKeys"): AUTHENTICATED,
    ("GET", "/api/v2/iam/accessKeys"): AUTHENTICATED,
    ("DELETE", "/api/v2/iam/accessKeys/{accessKeyId}"): AUTHENTICATED,
    ("GET", "/api/v2/iam/users"): "USER:*:READ",
    ("GET", "/api/v2/iam/users/{id}"): "USER:*:READ",
    ("POST", "/api/v2/iam/users"): "USER:*:CREATE",
    ("PUT", "/api/v2/iam/users/{id}"): "USER:*:UPDATE",
    ("POST", "/api/v2/iam/users/{id}/changePassword"): "USER:*:UPDATE",
    ("PUT", "/api/v2/iam/users/{id}/roles"): "USER:*:UPDATE",
    ("POST", "/api/v2/iam/users/{id}/unlock"): "USER:*:UPDATE",
    ("GET", "/api/v2/iam/users/{id}/accessKeys"): "USER:*:READ",
    ("DELETE", "/api/v2/iam/users/{id}/accessKeys/{accessKeyId}"): "USER:*:UPDATE",
    ("DELETE", "/api/v2/iam/users/{id}"): "USER:*:DELETE",
    ("GET", "/api/v2/iam/roles"): "ROLE:*:READ",
    ("GET", "/api/v2/iam/roles/{id}"): "ROLE:*:READ",
    ("POST", "/api/v2/iam/roles"): "ROLE:*:CREATE",
    ("PUT", "/api/v2/iam/roles/{id}"): "ROLE:*:UPDATE",
    ("DELETE", "/api/v2/iam/roles/{id}"): "ROLE:*:DELETE",
    ("GET", "/api/v2/iam/auditEvents"): "AUDIT:*:READ",
    ("GET", "/api/v2/compute/hosts"): "HOST:*:READ",
    ("GET", "/api/v2/compute/hosts/{hostId}"): "HOST:*:READ",
    ("POST", "/api/v2/compute/hosts"): "HOST:*:CREATE",
    ("DELETE", "/api/v2/compute/hosts/{hostId}"): "HOST:*:DELETE",
    ("POST", "/api/v2/compute/hosts/batchCreate"): "HOST:*:CREATE",
    ("POST", "/api/v2/compute/hosts/batchDelete"): "HOST:*:DELETE",
    ("GET", "/api/v2/compute/regions"): "HOST:*:READ",
    ("GET", "/api/v2/compute/regions/{regionId}"): "HOST:*:READ",
    ("POST", "/api/v2/compute/regions"): "HOST:*:CREATE",
    ("DELETE", "/api/v2/compute/regions/{regionId}"): "HOST:*:DELETE",
    ("GET", "/api/v2/compute/idcs"): "HOST:*:READ",
    ("GET", "/api/v2/compute/idcs/{idcId}"): "HOST:*:READ",
    ("POST", "/api/v2/compute/idcs"): "HOST:*:CREATE",
    ("DELETE", "/api/v2/compute/idcs/{idcId}"): "HOST:*:DELETE",
    ("GET", "/api/v2/compute/hostTypes"): "HOST:*:READ",
    ("GET", "/api/v2/compute/hostTypes/{hostTypeId}"): "HOST:*:READ",
    ("POST", "/api/v2/compute/hostTypes"): "HOST:*:CREATE",
    ("DELETE", "/api/v2/compute/hostTypes/{hostTypeId}"): "HOST:*:DELETE",
    ("POST", "/api/v2/profiles/me/credentials"): "HOST:*:CREATE",
    ("GET", "/api/v2/profiles/me/credentials"): "HOST:*:READ",
    ("GET", "/api/v2/profiles/me/credentials/{credentialId}"): "HOST:*:READ",
    ("DELETE", "/api/v2/profiles/me/credentials/{credentialId}"): "HOST:*:DELETE",
    ("POST", "/api/v2/software-packages"): "PACKAGE:*:CREATE",
    ("GET", "/api/v2/software-packages"): "PACKAGE:*:READ",
    ("GET", "/api/v2/software-packages/{id}"): "PACKAGE:*:READ",
    ("DELETE", "/api/v2/software-packages/{id}"): "PACKAGE:*:DELETE",
    # The list shows the clusters the caller may read (every one with CLUSTER:*:READ).
    ("GET", "/api/v2/ob/clusters"): "CLUSTER:{each}:READ",
    ("POST", "/api/v2/ob/clusters"): "CLUSTER:*:CREATE",
    ("POST", "/api/v2/ob/clusters/takeOver"): "CLUSTER:*:CREATE",
    ("GET", "/api/v2/ob/clusters/{id}"): "CLUSTER:{id}:READ",
    ("DELETE", "/api/v2/ob/clusters/{id}"): "CLUSTER:{id}:DELETE",
    ("POST", "/api/v2/ob/clusters/{id}/zones"): "CLUSTER:{id}:UPDATE",
    ("DELETE", "/api/v2/ob/clusters/{id}/zones/{zoneName}"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/servers"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/servers/batchDelete"): "CLUSTER:{id}:UPDATE",
    ("GET", "/api/v2/ob/clusters/{id}/zones"): "CLUSTER:{id}:READ",
    ("GET", "/api/v2/ob/clusters/{id}/servers"): "CLUSTER:{id}:READ",
    ("GET", "/api/v2/ob/clusters/{id}/zones/{zoneName}/servers"): "CLUSTER:{id}:READ",
    ("POST", "/api/v2/ob/clusters/{id}/stop"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/start"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/restart"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/zones/{zoneName}/stop"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/zones/{zoneName}/start"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/zones/{zoneName}/restart"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/servers/{serverId}/stop"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/servers/{serverId}/start"): "CLUSTER:{id}:UPDATE",
    ("POST", "/api/v2/ob/clusters/{id}/servers/{serverId}/restart"): "CLUSTER:{id}:UPDATE",
    ("GET", "/api/v2/tasks/instances"): "CLUSTER:{task}:READ + TASK:*:READ",
    ("GET", "/api/v2/tasks/instances/{id}"): "CLUSTER:{task}:READ + TASK:*:READ",
    ("GET", "/api/v2/tasks/{id}"): "CLUSTER:{task}:READ + TASK:*:READ",
    ("GET", "/api/v2/tasks/instances/{id}/subtasks/{sid}"): "CLUSTER:{task}:READ + TASK:*:READ",
    ("GET", "/api/v2/tasks/instances/{id}/subtasks/{sid}/log"): "CLUSTER:{task}:READ + TASK:*:READ",
    ("GET", "/api/v2/tasks/instances/{id}/stream"): "CLUSTER:{task}:READ + TASK:*:READ",
    ("POST", "/api/v2/tasks/instances/{id}/retry"): "CLUSTER:{task}:UPDATE + TASK:*:UPDATE",
    ("POST", "/api/v2/tasks/instances/{id}/rollback"): "CLUSTER:{task}:UPDATE + TASK:*:UPDATE",
    (
        "POST",
        "/api/v2/tasks/instances/{id}/subtasks/{sid}/retry",
    ): "CLUSTER:{task}:UPDATE + TASK:*:UPDATE",
    (
        "POST",
        "/api/v2/tasks/instances/{id}/subtasks/{sid}/skip",
    ): "CLUSTER:{task}:UPDATE + TASK:*:UPDATE",
    (
        "POST",
        "/api/v2/tasks/instances/{id}/subtasks/{sid}/cancel",
    ): "CLUSTER:{task}:UPDATE + TASK:*:UPDATE",
    # OCP resources obpilot does not manage: any caller gets 501 and why (system/unserved.py).
    ("GET", "/api/v2/ob/tenants"): AUTHENTICATED,
    ("GET", "/api/v2/ob/clusters/{id}/tenants"): AUTHENTICATED,
    ("POST", "/api/v2/ob/clusters/{id}/tenants"): AUTHENTICATED,
    ("POST", "/api/v2/ob/clusters/{id}/tenants/createTenant"): AUTHENTICATED,
    ("GET", "/api/v2/ob/clusters/{id}/tenants/{tenantId}"): AUTHENTICATED,
    ("DELETE", "/api/v2/ob/clusters/{id}/tenants/{tenantId}"): AUTHENTICATED,
    ("GET", "/api/v2/ob/cluster/{id}/tenants/{tenantId}"): AUTHENTICATED,
    ("POST", "/api/v2/obproxy/clusters"): AUTHENTICATED,
    ("GET", "/api/v2/obproxy/clusters/{id}"): AUTHENTICATED,
    ("DELETE", "/api/v2/obproxy/clusters/{id}"): AUTHENTICATED,
    ("GET", "/api/v2/arbitration/services"): AUTHENTICATED,  # stays 404: "not supported"
    ("POST", "/api/v2/arbitration/services"): AUTHENTICATED,
    ("GET", "/api/v2/arbitration/services/{id}"): AUTHENTICATED,
    ("DELETE", "/api/v2/arbitration/services/{id}/delete"): AUTHENTICATED,
}
