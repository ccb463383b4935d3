"""Adding hosts in a batch over HTTP, against this machine (a LOCAL host) and a loopback
sshd: the hosts are recorded NEW, one Prepare host task logs in to each, surveys it and
makes it AVAILABLE with its system; a host that fails a check stays NEW until a retry after
the repair. Refused batches, and batch deletes that refuse, change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from obpilot.db.engine import Database
from obpilot.hosts.ssh import host_key_fingerprint
from obpilot.inventory import service as inventory
from tests.support.databases import free_port
from tests.support.inventory import add_cluster
from tests.support.operations import wait_task
from tests.support.sshd import SshServer

HOSTS = "/api/v2/compute/hosts"
BATCH_CREATE = f"{HOSTS}/batchCreate"
BATCH_DELETE = f"{HOSTS}/batchDelete"
Json = dict[str, Any]


async def post(client: httpx.AsyncClient, url: str, body: Json) -> Json:
    response = await client.post(url, json=body)
    assert response.status_code == 200, response.text
    data: Json = response.json()["data"]
    return data


async def placement(client: httpx.AsyncClient) -> Json:
    """An IDC and a host type for the batch."""
    region = await post(client, "/api/v2/compute/regions", {"name": "east"})
    idc = await post(client, "/api/v2/compute/idcs", {"name": "dc1", "regionId": region["id"]})
    host_type = await post(client, "/api/v2/compute/hostTypes", {"name": "x86"})
    return {"idcId": idc["id"], "typeId": host_type["id"]}


def local_batch(place: Json, **changes: Any) -> Json:
    return {
        "hostBasicDataList": [{"innerIpAddress": "127.0.0.1", "serialNumber": "SN1"}],
        "sshPort": 22,
        "kind": "LOCAL",
        "publishPorts": [],
        **place,
        **changes,
    }


async def host_of(client: httpx.AsyncClient, host_id: int) -> Json:
    response = await client.get(f"{HOSTS}/{host_id}")
    assert response.status_code == 200, response.text
    host: Json = response.json()["data"]
    return host


async def test_a_local_and_an_ssh_host_are_prepared_and_become_available(
    client: httpx.AsyncClient, sshd: SshServer
) -> None:
    place = await placement(client)
    # credentialId 0 is what OCP's clients send when none is set: none, for a LOCAL host.
    local = await post(client, BATCH_CREATE, local_batch(place, alias="me", credentialId=0))
    # What field clients read (data.id, data.hostIds), and OCP's contents.
    [task] = local["contents"]
    assert (task["id"], task["name"], task["cluster"]) == (local["id"], "Prepare host", None)
    [local_id] = local["hostIds"]
    names = [s["name"] for s in task["tasks"]]
    assert names == ["Pre check for create host", "Wait node", "Update host status"]
    assert (await host_of(client, local_id))["status"] in ("NEW", "AVAILABLE")

    credential = await post(
        client,
        "/api/v2/profiles/me/credentials",
        {
            "name": "sshd",
            "sshCredentialProperty": {
                "type": "PRIVATE_KEY",
                "username": sshd.username,
                "privateKey": sshd.client_key,
            },
        },
    )
    remote = await post(
        client,
        BATCH_CREATE,
        {
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": sshd.port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential["id"],
            **place,
        },
    )
    [remote_id] = remote["hostIds"]
    for batch in (local, remote):
        ended = await wait_task(client, batch["id"])
        assert ended["status"] == "SUCCESSFUL", [
            (s["name"], s["status"], s.get("errorMessage") or s.get("message"))
            for s in ended["subtasks"]
        ]
    for host_id in (local_id, remote_id):
        host = await host_of(client, host_id)
        assert host["status"] == "AVAILABLE"
        assert host["operatingSystem"].startswith("Linux ")
        assert host["architecture"]
        assert (host["idcName"], host["regionName"], host["typeName"]) == ("dc1", "east", "x86")
    assert (await host_of(client, local_id))["alias"] == "me"
    ssh_host = await host_of(client, remote_id)
    assert ssh_host["name"] == f"127.0.0.1:{sshd.port}"
    # The first login recorded the key the host offered, as adding one host does.
    assert ssh_host["hostKeyFingerprint"] == host_key_fingerprint(sshd.host_key)


async def test_a_failed_check_keeps_the_host_new_until_a_retry_after_the_repair(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    settings = app.state.settings
    settings.host_min_memory_available = 2**60  # more than any machine has
    batch = await post(client, BATCH_CREATE, local_batch(await placement(client)))
    failed = await wait_task(client, batch["id"])
    assert failed["status"] == "FAILED"
    [check] = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
    assert check["name"] == "Pre check for create host"
    log = await client.get(f"/api/v2/tasks/instances/{batch['id']}/subtasks/{check['id']}/log")
    assert "FAILED: memory available" in log.text
    [host_id] = batch["hostIds"]
    assert (await host_of(client, host_id))["status"] == "NEW"

    settings.host_min_memory_available = 0  # the repair
    retried = await client.post(f"/api/v2/tasks/instances/{batch['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert (await wait_task(client, batch["id"]))["status"] == "SUCCESSFUL"
    assert (await host_of(client, host_id))["status"] == "AVAILABLE"


async def test_a_refused_batch_adds_no_host_and_no_task(client: httpx.AsyncClient) -> None:
    place = await placement(client)
    await post(client, BATCH_CREATE, local_batch(place))  # 127.0.0.1:22 is taken now
    two = [{"innerIpAddress": "10.0.0.1"}, {"innerIpAddress": "10.0.0.1"}]
    ssh = {"kind": "DEDICATED_PHYSICAL_MACHINE", "credentialId": 1}
    cases: list[tuple[Json, int, str]] = [
        (local_batch(place, idcId=999), 404, "IDC <999> does not exist"),
        (local_batch(place, typeId=999), 404, "Host type <999> does not exist"),
        (local_batch(place), 409, "Host <127.0.0.1:22> already exists"),
        (
            local_batch(place, hostBasicDataList=[{"innerIpAddress": "10.0.0.9"}]),
            400,
            "must be 127.0.0.1",
        ),
        (local_batch(place, hostBasicDataList=two, **ssh), 400, "10.0.0.1 more than once"),
        (local_batch(place, kind="DEDICATED_CONTAINER"), 400, "needs credentialId"),
        (
            local_batch(place, kind="DEDICATED_CONTAINER", credentialId=0),
            400,
            "credentialId 0 names no credential",
        ),
        (
            local_batch(place, hostBasicDataList=[{"innerIpAddress": "10.0.0.2"}], **ssh),
            404,
            "Credential <1> does not exist",
        ),
        (local_batch(place, hostBasicDataList=[]), 400, ""),
        (
            local_batch(
                place, hostBasicDataList=[{"innerIpAddress": f"10.1.0.{i}"} for i in range(101)]
            ),
            400,
            "",
        ),
        (local_batch(place, hostBasicDataList=[{"innerIpAddress": "not-an-ip"}]), 400, ""),
    ]
    for body, status, message in cases:
        response = await client.post(BATCH_CREATE, json=body)
        assert response.status_code == status, (body, response.text)
        assert message in response.text
    assert (await client.get(HOSTS)).json()["data"]["page"]["totalElements"] == 1
    tasks = (await client.get("/api/v2/tasks/instances")).json()["data"]
    assert tasks["page"]["totalElements"] == 1


async def test_batch_delete_deletes_all_or_none(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await placement(client)
    free = await post(
        client,
        "/api/v2/compute/hosts",
        {"innerIpAddress": "127.0.0.1", "kind": "LOCAL", "sshPort": free_port()},
    )
    used = await post(client, "/api/v2/compute/hosts", {"innerIpAddress": "::1", "kind": "LOCAL"})
    async with database.transaction(write=True) as session:
        host = await inventory.get_host(session, host_id=used["id"])
        await add_cluster(session, host, name="ob1", zones=1)
    both = [free["id"], used["id"]]
    refused = await client.post(BATCH_DELETE, json={"hostIdList": both})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "CMP07000"
    assert "host ::1:22 runs server ::1:30000 of OB cluster ob1" in error["message"]
    single = await client.delete(f"{HOSTS}/{used['id']}")
    assert single.status_code == 409
    assert "of OB cluster ob1" in single.json()["error"]["message"]
    missing = await client.post(BATCH_DELETE, json={"hostIdList": [free["id"], 999]})
    assert missing.status_code == 404
    repeated = await client.post(BATCH_DELETE, json={"hostIdList": [free["id"], free["id"]]})
    assert repeated.status_code == 400
    assert (await client.get(HOSTS)).json()["data"]["page"]["totalElements"] == 2
    assert place  # the catalog entries are not what is deleted here
    deleted = await client.post(BATCH_DELETE, json={"hostIdList": [free["id"]]})
    assert deleted.status_code == 200, deleted.text
    assert (await client.get(f"{HOSTS}/{free['id']}")).status_code == 404


@pytest.mark.parametrize("role", ["HOST_VIEWER", "CLUSTER_VIEWER"])
async def test_only_host_managers_add_or_delete_hosts(client_as: Any, role: str) -> None:
    reader = await client_as(role)
    assert (await reader.post(BATCH_CREATE, json={})).status_code == 403
    assert (await reader.post(BATCH_DELETE, json={"hostIdList": [1]})).status_code == 403
