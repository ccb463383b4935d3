"""A cluster across two hosts, the way an OCP client builds one: the hosts added in a
batch (the local host and the loopback sshd as a remote host), the wheel uploaded, a
2-zone cluster created with a server on each host, then deleted; the remote server's
files travel over SFTP and its directory is claimed and moved aside over SSH."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.lifecycle import cluster_body, failed_logs, free_port, run_sql, wait_task
from tests.support.sshd import SshServer


def test_a_cluster_on_a_local_and_an_ssh_host(
    api: tuple[httpx.Client, int, str], sshd: SshServer, tmp_path: Path
) -> None:
    client, local_host, rpm = api
    credential = client.post(
        "/api/v2/profiles/me/credentials",
        json={
            "name": "lifecycle-ssh",
            "sshCredentialProperty": {
                "type": "PRIVATE_KEY",
                "username": sshd.username,
                "privateKey": sshd.client_key,
            },
        },
    ).json()["data"]
    region = client.post("/api/v2/compute/regions", json={"name": "lc-region"}).json()["data"]
    idc = client.post(
        "/api/v2/compute/idcs", json={"name": "lc-idc", "regionId": region["id"]}
    ).json()["data"]
    host_type = client.post("/api/v2/compute/hostTypes", json={"name": "lc-type"}).json()["data"]
    batch = client.post(
        "/api/v2/compute/hosts/batchCreate",
        json={
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": sshd.port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential["id"],
            "idcId": idc["id"],
            "typeId": host_type["id"],
        },
    )
    assert batch.status_code == 200, batch.text
    assert wait_task(client, batch.json()["data"]["id"])["status"] == "SUCCESSFUL"
    (remote_host,) = batch.json()["data"]["hostIds"]

    ports = [free_port(), free_port()]
    body = cluster_body("lc_ssh", local_host, rpm, tmp_path, ports)
    body["zones"][1]["servers"][0]["hostId"] = remote_host
    body["zones"][1]["idcName"] = "lc-idc"
    created = client.post("/api/v2/ob/clusters", json=body)
    assert created.status_code == 200, created.text
    task = wait_task(client, created.json()["data"]["id"])
    assert task["status"] == "SUCCESSFUL", failed_logs(client, task)
    cluster_id = created.json()["data"]["clusterId"]
    cluster = client.get(f"/api/v2/ob/clusters/{cluster_id}").json()["data"]
    assert {s["hostId"] for z in cluster["zones"] for s in z["servers"]} == {
        local_host,
        remote_host,
    }
    assert (cluster["zones"][1]["idcName"], cluster["zones"][1]["regionName"]) == (
        "lc-idc",
        "lc-region",
    )
    assert run_sql(ports[1], "SELECT 1") == [(1,)]

    deleted = client.delete(f"/api/v2/ob/clusters/{cluster_id}")
    assert wait_task(client, deleted.json()["data"]["id"])["status"] == "SUCCESSFUL"
    gone = client.get(f"/api/v2/ob/clusters/{cluster_id}")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "OBE11001")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"s{port}.deleted-{deleted.json()['data']['id']}" for port in ports
    )
    assert client.delete(f"/api/v2/compute/hosts/{remote_host}").status_code == 200
