"""FastAPI dependencies for authentication and permission checks.

    dependencies=[Depends(require("TASK", "READ"))]
    user: Annotated[Principal, Depends(require("CLUSTER", "UPDATE", cluster_id_param="id"))]
    user: CurrentUser            # authenticated, no particular permission

The app also runs `authenticate_api` on every route, so a `/api/**` route that forgets its
`require` is still closed to anonymous callers (only login and `GET /api/v2/info` are open).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant

from obpilot.api.params import parse_id
from obpilot.errors import ClusterUpdateForbidden, Forbidden, NotAuthenticated, ObpilotError
from obpilot.iam.authentication import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Authenticator,
    SignedRequest,
    check_csrf,
    parse_basic,
)
from obpilot.iam.permissions import AUTHENTICATED, PUBLIC, Permission, Principal, required
from obpilot.iam.signatures import SCHEME, content_md5

PUBLIC_ROUTES = frozenset({("POST", "/api/v2/iam/login"), ("GET", "/api/v2/info")})


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def client_address(request: Request) -> str | None:
    """The client's address: the peer, or what a trusted proxy says in X-Forwarded-For."""
    peer = request.client.host if request.client else None
    return get_authenticator(request).source_address(
        peer, request.headers.getlist("x-forwarded-for")
    )


def _signed_request(request: Request, authorization: str, body_md5: str) -> SignedRequest:
    scope = request.scope
    raw_path = scope.get("raw_path")
    path = (
        bytes(raw_path).decode("latin-1").split("?", 1)[0]
        if raw_path
        else quote(scope["path"], safe="/-._~!$&'()*+,;=:@%")
    )
    return SignedRequest(
        authorization=authorization,
        method=request.method,
        body_md5=body_md5,
        content_type=request.headers.get("content-type", ""),
        date=request.headers.get("date"),
        host=request.headers.get("host", ""),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
        path=path,
        query=bytes(scope.get("query_string", b"")).decode("latin-1"),
        content_md5=request.headers.get("content-md5"),
    )


async def _identify(request: Request, authenticator: Authenticator) -> Principal:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "basic":
            username, password = parse_basic(credentials)
            request.state.attempted_username = username
            return await authenticator.basic(
                username, password, source_address=client_address(request)
            )
        if scheme == SCHEME:
            request.state.attempted_username = credentials.partition(":")[0][:64] or None
            # A streamed upload is signed over its declared MD5, which the request gate
            # checks against the body as it streams in; any other body is read here.
            body_md5 = getattr(request.state, "declared_body_md5", None)
            if body_md5 is None:
                body_md5 = content_md5(await request.body())
            return await authenticator.access_key(_signed_request(request, authorization, body_md5))
        raise NotAuthenticated(f"Unsupported Authorization scheme; use Basic or {SCHEME}")
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal, csrf_hash = await authenticator.session(token)
        request.state.attempted_username = principal.username
        check_csrf(request.method, request.headers.get(CSRF_HEADER), csrf_hash)
        return principal
    raise NotAuthenticated(
        "Not logged in: send HTTP Basic credentials, an OCP AK/SK signature or the session "
        "cookie from POST /api/v2/iam/login"
    )


def from_browser(request: Request) -> bool:
    """The console, or any browser: modern browsers send Sec-Fetch-* on every request."""
    return (
        SESSION_COOKIE in request.cookies
        or request.headers.get("x-requested-with", "").lower() == "xmlhttprequest"
        or "sec-fetch-site" in request.headers
    )


async def authenticate(request: Request) -> Principal:
    """The caller, authenticated once per request (later dependencies reuse it)."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    try:
        principal = await _identify(request, get_authenticator(request))
    except ObpilotError as error:
        if "authorization" in request.headers or SESSION_COOKIE in request.cookies:
            # Credentials were presented and refused: the audit log keeps that.
            request.state.authentication_failed = True
        if isinstance(error, NotAuthenticated) and from_browser(request):
            # No Basic challenge: a browser would ask for a password, then remember it and
            # send it with every later request to this server, other sites' forms included.
            error.headers = {}
        raise
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]


async def authenticate_api(request: Request) -> None:
    """App-wide guard: every /api/** route except the public ones needs a caller. The
    request gate (api/gate.py) authenticated it before reading the body; this second guard
    reuses that caller."""
    if request.url.path.startswith("/api/") and (
        (request.method, request.url.path) not in PUBLIC_ROUTES
    ):
        await authenticate(request)


def _on_cluster(resource: str, action: str, cluster_id: int) -> Permission:
    """CLUSTER:{id}:ACTION, or CLUSTER:{id}:RESOURCE:*:ACTION for what lives in a cluster."""
    if resource == "CLUSTER":
        return Permission(path=(("CLUSTER", str(cluster_id)),), action=action)
    return Permission(path=(("CLUSTER", str(cluster_id)), (resource, "*")), action=action)


def _refusal(resource: str, action: str, resource_id: str | None) -> Forbidden:
    if resource == "CLUSTER" and action == "UPDATE" and resource_id is not None:
        return ClusterUpdateForbidden(f"Not authorized to update cluster {resource_id}")
    target = f"{resource} {resource_id}" if resource_id is not None else resource
    return Forbidden(
        f"Not authorized for {action} on {target}; ask an administrator for the permission"
    )


#: `cluster_id_param` of a list route whose answer holds only the clusters the caller may see.
EACH = "each"


def require(
    resource: str,
    action: str,
    *,
    cluster_id_param: str | None = None,
    and_task_cluster: bool = False,
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks a permission, returning the
    caller (a `Principal` with `.id` and `.username`).

    Without `cluster_id_param` it checks `RESOURCE:*:ACTION`. With it, the check is on the
    cluster whose id is in that path parameter (`CLUSTER:{id}:ACTION`, or
    `CLUSTER:{id}:RESOURCE:*:ACTION` for another resource); a caller without the permission
    gets the same 403 whether or not the cluster exists, so the answer reveals nothing.
    With `cluster_id_param=EACH` (a list route) the action on at least one cluster is
    enough: the route shows only the clusters it is granted on.

    `and_task_cluster` declares that the route's service also checks ACTION on the cluster
    the task in the path belongs to (it needs the task's row, so it cannot happen here); it
    shows in the permission table as `CLUSTER:{task}:ACTION`."""
    Permission.parse(f"{resource}:*:{action}")  # a typo fails at import time

    async def dependency(request: Request, principal: CurrentUser) -> Principal:
        if cluster_id_param is None:
            if principal.permissions.allows(required(resource, action)):
                return principal
            raise _refusal(resource, action, None)
        if cluster_id_param == EACH:  # a list, filtered by the route to what is allowed
            if principal.permissions.allows_somewhere(resource, action):
                return principal
            raise _refusal(resource, action, None)
        # The same strict reading as the route's own path parameter (api/params.py), so
        # the permission is checked on exactly the cluster the route acts on; a malformed
        # id is a 400 before any permission decision.
        cluster_id = parse_id(request.path_params.get(cluster_id_param), name=cluster_id_param)
        if principal.permissions.allows(_on_cluster(resource, action, cluster_id)):
            return principal
        raise _refusal(resource, action, str(cluster_id))

    dependency.__name__ = f"require_{resource.lower()}_{action.lower()}"
    dependency.required_permission = (resource, action, cluster_id_param)  # type: ignore[attr-defined]
    dependency.task_cluster_action = action if and_task_cluster else None  # type: ignore[attr-defined]
    return dependency


def route_requirement(path: str, method: str, dependant: Dependant) -> str:
    """What a route needs, read from its dependencies, in ROUTE_PERMISSIONS' notation."""
    if (method, path) in PUBLIC_ROUTES:
        return PUBLIC
    found: list[str] = []

    def walk(node: Dependant) -> None:
        for sub in node.dependencies:
            needed = getattr(sub.call, "required_permission", None)
            if needed is not None:
                resource, action, cluster_param = needed
                if cluster_param is None:
                    found.append(f"{resource}:*:{action}")
                elif resource == "CLUSTER":
                    found.append(f"CLUSTER:{{{cluster_param}}}:{action}")
                else:
                    found.append(f"CLUSTER:{{{cluster_param}}}:{resource}:*:{action}")
            task_cluster_action = getattr(sub.call, "task_cluster_action", None)
            if task_cluster_action is not None:
                found.append(f"CLUSTER:{{task}}:{task_cluster_action}")
            walk(sub)

    walk(dependant)
    # Every /api/** route is at least authenticated by the app-wide guard.
    return " + ".join(sorted(set(found))) or AUTHENTICATED
