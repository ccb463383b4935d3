"""A cluster across two hosts, the way an OCP client builds one: the hosts added in a
batch (the local host and the loopback sshd as a remote host), the wheel uploaded, a
2-zone cluster created with a server on each host, then deleted; the remote server's
files travel over SFTP and its directory is claimed and moved aside over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.lifecycle import cluster_body, failed_logs, free_port, run_sql, wait_task
from tests.support.sshd import SshServer


def test_a_cluster_on_a_local_and_an_ssh_host(
    api: tuple[httpx.Client, int, str], sshd: SshServer, tmp_path: Path
) -> None:
    client, local_host, rpm = api
    credential = _credential(client, sshd, "lifecycle-ssh")
    idc_id, type_id = _catalog(client)
    batch = client.post(
        "/api/v2/compute/hosts/batchCreate",
        json={
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": sshd.port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential["id"],
            "idcId": idc_id,
            "typeId": type_id,
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


def _credential(client: httpx.Client, sshd: SshServer, name: str) -> dict[str, Any]:
    answer = client.post(
        "/api/v2/profiles/me/credentials",
        json={
            "name": name,
            "sshCredentialProperty": {
                "type": "PRIVATE_KEY",
                "username": sshd.username,
                "privateKey": sshd.client_key,
            },
        },
    )
    data: dict[str, Any] = answer.json()["data"]
    return data


def test_a_host_whose_preparation_failed_takes_no_server(
    api: tuple[httpx.Client, int, str], sshd: SshServer, tmp_path: Path
) -> None:
    client, local_host, rpm = api
    credential = _credential(client, sshd, "lifecycle-unprepared")
    idc_id, type_id = _catalog(client)
    batch = client.post(
        "/api/v2/compute/hosts/batchCreate",
        json={
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.2"}],
            "sshPort": free_port(),  # nothing listens there: the login fails
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential["id"],
            "idcId": idc_id,
            "typeId": type_id,
        },
    )
    assert batch.status_code == 200, batch.text
    assert wait_task(client, batch.json()["data"]["id"])["status"] == "FAILED"
    (unprepared,) = batch.json()["data"]["hostIds"]
    body = cluster_body("lc_unprepared", local_host, rpm, tmp_path, [free_port(), free_port()])
    body["zones"][1]["servers"][0]["hostId"] = unprepared
    refused = client.post("/api/v2/ob/clusters", json=body)
    assert refused.status_code == 400
    (problem,) = refused.json()["error"]["subErrors"]
    assert problem["field"] == "zones[1].servers[0].hostId"
    assert "is NEW" in problem["message"]


def _catalog(client: httpx.Client) -> tuple[int, int]:
    """The IDC lc-idc (in region lc-region) and the host type lc-type: (idc id, type id)."""
    idcs = client.get("/api/v2/compute/idcs").json()["data"]["contents"]
    known = {idc["name"]: idc["id"] for idc in idcs}
    types = client.get("/api/v2/compute/hostTypes").json()["data"]["contents"]
    known_types = {t["name"]: t["id"] for t in types}
    if "lc-idc" not in known:
        region = client.post("/api/v2/compute/regions", json={"name": "lc-region"})
        idc = client.post(
            "/api/v2/compute/idcs", json={"name": "lc-idc", "regionId": region.json()["data"]["id"]}
        )
        known["lc-idc"] = idc.json()["data"]["id"]
    if "lc-type" not in known_types:
        made = client.post("/api/v2/compute/hostTypes", json={"name": "lc-type"})
        known_types["lc-type"] = made.json()["data"]["id"]
    return int(known["lc-idc"]), int(known_types["lc-type"])
