"""Finding 2 (ownership): credentials had no owner, so a HOST_MANAGER listed the admin's
root password credential and added a "host" of its choosing with it. A credential is its
creator's: nobody else sees, deletes or logs in with it, but for holders of
CREDENTIAL:*:USE (ADMIN); another's is answered as a missing one."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from obpilot.db.engine import Database
from obpilot.inventory.models import Host
from tests.conftest import UserClientFactory
from tests.credentials.test_routes import BASE, password_credential
from tests.provision.test_routes import placement


async def host_count(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Host)) or 0)


async def test_another_users_credential_is_not_seen_nor_used(
    client: httpx.AsyncClient, client_as: UserClientFactory, database: Database
) -> None:
    admins = (await client.post(BASE, json=password_credential("root"))).json()["data"]
    manager = await client_as("HOST_MANAGER")
    listed = (await manager.get(BASE)).json()["data"]
    assert listed["contents"] == []
    assert listed["page"]["totalElements"] == 0
    for method, url in (("GET", f"{BASE}/{admins['id']}"), ("DELETE", f"{BASE}/{admins['id']}")):
        refused = await manager.request(method, url)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "COM10002"
    ssh_host = {
        "innerIpAddress": "127.0.0.1",
        "sshPort": 1,
        "kind": "DEDICATED_PHYSICAL_MACHINE",
        "credentialId": admins["id"],
    }
    added = await manager.post("/api/v2/compute/hosts", json=ssh_host)
    assert added.status_code == 404, added.text
    place = await placement(client)
    batch = {
        "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
        "sshPort": 1,
        "kind": "DEDICATED_PHYSICAL_MACHINE",
        **place,
        "credentialId": admins["id"],
    }
    batched = await manager.post("/api/v2/compute/hosts/batchCreate", json=batch)
    assert batched.status_code == 404, batched.text
    assert await host_count(database) == 0
    assert (await client.get(f"{BASE}/{admins['id']}")).status_code == 200


async def test_names_are_each_owners_own_and_admin_sees_all(
    client: httpx.AsyncClient, client_as: UserClientFactory
) -> None:
    await client.post(BASE, json=password_credential("root"))
    manager = await client_as("HOST_MANAGER")
    mine = await manager.post(BASE, json=password_credential("root"))
    assert mine.status_code == 200, mine.text  # the admin's "root" is not revealed
    again = await manager.post(BASE, json=password_credential("root"))
    assert again.status_code == 409
    assert [c["name"] for c in (await manager.get(BASE)).json()["data"]["contents"]] == ["root"]
    assert (await client.get(BASE)).json()["data"]["page"]["totalElements"] == 2
