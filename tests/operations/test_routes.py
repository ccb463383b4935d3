"""The operation endpoints: one plain function per path, named as the audit log records
it, each with its own body model."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from obpilot.app import create_app
from obpilot.db.engine import Database
from obpilot.operations.routes import router
from obpilot.settings import Settings
from tests.support.inventory import add_cluster, add_local_host

ROUTES = {
    "/api/v2/ob/clusters/{id}/stop": ("stop_cluster", "StopOptions"),
    "/api/v2/ob/clusters/{id}/start": ("start_cluster", "StartOptions"),
    "/api/v2/ob/clusters/{id}/restart": ("restart_cluster", "RestartOptions"),
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/stop": ("stop_zone", "StopOptions"),
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/start": ("start_zone", "StartOptions"),
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/restart": ("restart_zone", "RestartOptions"),
    "/api/v2/ob/clusters/{id}/servers/{serverId}/stop": ("stop_server", "StopOptions"),
    "/api/v2/ob/clusters/{id}/servers/{serverId}/start": ("start_server", "StartOptions"),
    "/api/v2/ob/clusters/{id}/servers/{serverId}/restart": ("restart_server", "RestartOptions"),
}


def test_every_operation_is_one_named_post_with_its_own_optional_body(tmp_path: Path) -> None:
    routes = {route.path: route for route in router.routes if isinstance(route, APIRoute)}
    assert {path: route.endpoint.__name__ for path, route in routes.items()} == {
        path: name for path, (name, _) in ROUTES.items()
    }
    assert all(route.methods == {"POST"} for route in routes.values())
    paths = create_app(Settings(home=tmp_path)).openapi()["paths"]
    for path, (_, body) in ROUTES.items():
        request = paths[path]["post"]["requestBody"]
        assert not request.get("required", False), path
        schemas = request["content"]["application/json"]["schema"]["anyOf"]
        assert {"$ref": f"#/components/schemas/{body}"} in schemas, path


@pytest.mark.parametrize("part", ["zones/zone1", "servers/{server}"])
async def test_a_start_takes_no_stop_options(
    client: httpx.AsyncClient, database: Database, part: str
) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=2)
    server = cluster.zones[0].servers[0].id
    response = await client.post(
        f"/api/v2/ob/clusters/{cluster.id}/{part.format(server=server)}/start",
        json={"force": True},
    )
    assert response.status_code == 400, response.text
    assert "force" in response.json()["error"]["message"]
