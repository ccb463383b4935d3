"""FastAPI dependencies for authentication and permission checks.

dependencies=[Depends(require("TASK", "READ"))]
user: Annotated[Principal, Depends(require("CLUSTER", "UPDATE", cluster_id_param="id"))]
user: CurrentUser            # authenticated, no particular permission
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from obpilot.errors import ClusterUpdateForbidden, Forbidden
from obpilot.iam.permissions import ALL, Permission, PermissionSet, required


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    id: int
    username: str
    permissions: PermissionSet = field(compare=False)
    method: str = "basic"
    session_id: int | None = None


async def authenticate(request: Request) -> Principal:
    # Interim wiring while the credential checks land: every caller is the admin.
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = Principal(id=1, username="admin", permissions=PermissionSet.parse([ALL]))
        request.state.principal = principal
    assert isinstance(principal, Principal)
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]


def _refusal(resource: str, action: str, resource_id: str | None) -> Forbidden:
    if resource == "CLUSTER" and action == "UPDATE" and resource_id is not None:
        return ClusterUpdateForbidden(f"Not authorized to update cluster {resource_id}")
    target = f"{resource} {resource_id}" if resource_id is not None else resource
    return Forbidden(
        f"Not authorized for {action} on {target}; contact the administrator for permission"
    )


def _on_cluster(resource: str, action: str, cluster_id: str) -> Permission:
    """CLUSTER:{id}:ACTION, or CLUSTER:{id}:RESOURCE:*:ACTION for what lives in a cluster."""
    if resource == "CLUSTER":
        return Permission(path=(("CLUSTER", cluster_id),), action=action)
    return Permission(path=(("CLUSTER", cluster_id), (resource, "*")), action=action)


def require(
    resource: str, action: str, *, cluster_id_param: str | None = None
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks `RESOURCE:<id|*>:ACTION`.

    With `cluster_id_param` the check is on the cluster named by that path parameter, and a
    caller without the permission gets the same 403 whether or not the cluster exists."""
    Permission.parse(f"{resource}:*:{action}")  # fail at import time on a typo

    async def dependency(request: Request, principal: CurrentUser) -> Principal:
        if cluster_id_param is None:
            if principal.permissions.allows(required(resource, action)):
                return principal
            # A list route: READ on some instances suffices; the route filters its answer.
            if action == "READ" and principal.permissions.allows_somewhere(resource, action):
                return principal
            raise _refusal(resource, action, None)
        raw = str(request.path_params.get(cluster_id_param, ""))
        if raw.isdigit() and principal.permissions.allows(_on_cluster(resource, action, raw)):
            return principal
        if not raw.isdigit() and principal.permissions.allows_somewhere("CLUSTER", action):
            return principal  # the path validation answers 400 for the malformed id
        raise _refusal(resource, action, raw or None)

    dependency.__name__ = f"require_{resource.lower()}_{action.lower()}"
    return dependency
