"""A server's `parameters` are stored in clear and shown to every reader of its cluster, so
credentials are refused there (they have the encrypted rootPassword and the credential
store), and any stored before are not shown."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update

from obpilot.db.engine import Database
from obpilot.inventory.models import Cluster, Server
from tests.support.inventory import add_cluster, add_local_host


def take_over_request(host_id: int, parameters: dict[str, str]) -> dict[str, object]:
    server = {
        "hostId": host_id,
        "kind": "seekdb",
        "sqlPort": 2881,
        "homePath": "/srv/seekdb",
        "parameters": parameters,
    }
    return {"name": "c1", "obClusterId": 7, "zones": [{"name": "zone1", "servers": [server]}]}


@pytest.mark.parametrize(
    "name",
    [
        "root_password",
        "proxyro_password",
        "OB_ROOT_PASSWORD",
        "ssh_private_key",
        "backup_secret",
        "Credential_File",
    ],
)
async def test_take_over_refuses_credentials_in_parameters(
    client: httpx.AsyncClient, database: Database, name: str
) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
    request = take_over_request(host.id, {"cpu_count": "4", name: "s3cret!"})
    response = await client.post("/api/v2/ob/clusters/takeOver", json=request)
    body = response.json()
    assert response.status_code == 400, body
    assert body["error"]["code"] == "COM10001"
    assert name in body["error"]["message"]
    assert "s3cret!" not in response.text
    async with database.transaction() as session:
        assert list(await session.scalars(select(Cluster))) == []


async def test_credentials_stored_before_are_not_shown(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
        await session.execute(
            update(Server).values(parameters={"root_password": "s3cret!", "cpu_count": "4"})
        )
    response = await client.get(f"/api/v2/ob/clusters/{cluster.id}/servers")
    assert response.status_code == 200, response.json()
    [server] = response.json()["data"]["contents"]
    assert server["parameters"] == {"root_password": "******", "cpu_count": "4"}
    assert "s3cret!" not in response.text
