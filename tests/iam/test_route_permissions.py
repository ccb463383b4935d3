"""The permission table (obpilot.iam.permissions.ROUTE_PERMISSIONS, copied into the README)
tells the truth about the routes, and no /api/** route is open to anonymous callers except
login and service information."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.routing import APIRoute

from obpilot.app import ROUTERS
from obpilot.iam.deps import route_requirement
from obpilot.iam.permissions import AUTHENTICATED, PUBLIC, ROUTE_PERMISSIONS


def _shape(text: str) -> str:
    """Path parameters by position, not by name: `/x/{id}` and `/x/{taskId}` are one route."""
    return re.sub(r"\{[^}]+\}", "{}", text)


def api_routes() -> list[tuple[str, str, APIRoute]]:
    return [
        (method, route.path, route)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/api/")
        for method in sorted(route.methods)
    ]


TABLE = {
    (method, _shape(path)): _shape(needed) for (method, path), needed in ROUTE_PERMISSIONS.items()
}


def test_the_table_matches_the_routes() -> None:
    wrong = {}
    for method, path, route in api_routes():
        derived = route_requirement(path, method, route.dependant)
        listed = TABLE.get((method, _shape(path)))
        if listed is None:
            # A route missing from the table must at least declare its permission.
            if derived in (AUTHENTICATED, PUBLIC):
                wrong[method, path] = f"not in ROUTE_PERMISSIONS and no require(): {derived}"
        elif _shape(derived) != listed:
            wrong[method, path] = f"table says {listed}, route needs {derived}"
    assert wrong == {}


def test_the_table_covers_the_issue_examples() -> None:
    assert ROUTE_PERMISSIONS["POST", "/api/v2/ob/clusters/{id}/stop"] == "CLUSTER:{id}:UPDATE"
    assert ROUTE_PERMISSIONS["GET", "/api/v2/ob/clusters/{id}/zones"] == "CLUSTER:{id}:READ"
    tasks = "/api/v2/tasks/instances"
    assert ROUTE_PERMISSIONS["GET", tasks] == "CLUSTER:{task}:READ + TASK:*:READ"
    assert ROUTE_PERMISSIONS["POST", f"{tasks}/{{id}}/retry"] == (
        "CLUSTER:{task}:UPDATE + TASK:*:UPDATE"
    )
    public = {route for route, needed in ROUTE_PERMISSIONS.items() if needed == PUBLIC}
    assert public == {("POST", "/api/v2/iam/login"), ("GET", "/api/v2/info")}


async def test_anonymous_callers_are_refused_everywhere_else(client: httpx.AsyncClient) -> None:
    opened = {}
    for method, path, _ in api_routes():
        if ROUTE_PERMISSIONS.get((method, path)) == PUBLIC:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = await client.request(
            method, url, json={} if method != "GET" else None, auth=None
        )
        body = response.json()
        if response.status_code != 401 or body["error"]["code"] != "IAM10000":
            opened[method, path] = (response.status_code, body)
    assert opened == {}


def test_the_readme_shows_the_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("<!-- route-permissions:start -->")[1].split(
        "<!-- route-permissions:end -->"
    )[0]
    shown = {
        (method, path): needed
        for method, path, needed in re.findall(
            r"^\| `(\w+)` \| `([^`]+)` \| `([^`]+)` \|$", section, re.M
        )
    }
    assert shown == ROUTE_PERMISSIONS
