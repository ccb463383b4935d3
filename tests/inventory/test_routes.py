"""The cluster list holds what the caller may read."""

from __future__ import annotations

import httpx

from obpilot.db.engine import Database
from tests.conftest import UserClientFactory
from tests.support.inventory import add_cluster, add_local_host


async def test_per_cluster_readers_see_only_their_clusters(
    client: httpx.AsyncClient, database: Database, client_as: UserClientFactory
) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        first = await add_cluster(session, host, name="first", zones=1)
        await add_cluster(session, host, name="second", zones=1, first_port=31000)
    role = await client.post(
        "/api/v2/iam/roles",
        json={"name": "READ_FIRST", "permissions": [f"CLUSTER:{first.id}:READ"]},
    )
    assert role.status_code == 200, role.text
    reader = await client_as("READ_FIRST")
    listed = (await reader.get("/api/v2/ob/clusters")).json()["data"]
    assert [c["name"] for c in listed["contents"]] == ["first"]
    assert listed["page"]["totalElements"] == 1
    everything = (await client.get("/api/v2/ob/clusters")).json()["data"]
    assert everything["page"]["totalElements"] == 2
    nobody = await client_as("HOST_VIEWER")
    assert (await nobody.get("/api/v2/ob/clusters")).status_code == 403
