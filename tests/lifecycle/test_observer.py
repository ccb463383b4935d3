"""An observer cluster created and deleted through the API: the oceanbase-ce RPM here
carries the fake `bin/observer` (tests/hosts/fake_observer.py), which daemonises, holds
its pid file, serves the MySQL protocol and logs every statement it is sent; so the
process steps run for real and the bootstrap SQL is read back as text."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.lifecycle import PASSWORD, failed_logs, free_port, wait_task
from tests.support.rpm import Member, executable, rpm

FAKE_OBSERVER = Path(__file__).resolve().parents[1] / "hosts" / "fake_observer.py"
VERSION, RELEASE = "4.2.1.0", "100000102023092807.el7"


def _server(host_id: int, ports: tuple[int, int], base: Path) -> dict[str, object]:
    sql, rpc = ports
    return {"hostId": host_id, "sqlPort": sql, "rpcPort": rpc, "homePath": str(base / f"ob{sql}")}


def _upload(client: httpx.Client, name: str, data: bytes, file_name: str) -> None:
    answer = client.post("/api/v2/software-packages", files={"file": (file_name, data)})
    assert answer.status_code == 200, answer.text


def test_an_observer_cluster_is_bootstrapped_with_one_rootservice_per_zone(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, _ = api
    observer = rpm(
        "oceanbase-ce",
        VERSION,
        RELEASE,
        [executable("./home/admin/oceanbase/bin/observer", FAKE_OBSERVER.read_bytes())],
    )
    libs = rpm(
        "oceanbase-ce-libs",
        VERSION,
        RELEASE,
        [Member("./home/admin/oceanbase/lib/libfake.so", b"\x7fELF", mode=0o100755)],
    )
    rpm_name = f"oceanbase-ce-{VERSION}-{RELEASE}.x86_64.rpm"
    _upload(client, "oceanbase-ce", observer, rpm_name)
    _upload(client, "oceanbase-ce-libs", libs, f"oceanbase-ce-libs-{VERSION}-{RELEASE}.x86_64.rpm")
    servers = [(free_port(), free_port()) for _ in range(3)]
    body = {
        "name": "lc_ob",
        "rpmName": rpm_name,
        "password": PASSWORD,
        "fullVersion": VERSION,
        "zones": [
            {
                "name": "zone1",
                "servers": [
                    {
                        "hostId": host_id,
                        "sqlPort": sql,
                        "rpcPort": rpc,
                        "homePath": str(tmp_path / f"ob{sql}"),
                    }
                    for sql, rpc in servers[:2]
                ],
            },
            {
                "name": "zone2",
                "servers": [
                    {
                        "hostId": host_id,
                        "sqlPort": servers[2][0],
                        "rpcPort": servers[2][1],
                        "homePath": str(tmp_path / f"ob{servers[2][0]}"),
                    }
                ],
            },
        ],
    }
    created = client.post("/api/v2/ob/clusters", json=body)
    assert created.status_code == 200, created.text
    task = wait_task(client, created.json()["data"]["id"])
    assert task["status"] == "SUCCESSFUL", failed_logs(client, task)
    names = [s["name"] for s in task["subtasks"]]
    assert names.count("Bootstrap ob") == 1
    assert names.count("Set sys password") == 1

    first = tmp_path / f"ob{servers[0][0]}"
    lines = [json.loads(line) for line in (first / "log" / "observer.log").read_text().splitlines()]
    (start,) = [line for line in lines if "argv" in line]
    rootservices = (
        f"127.0.0.1:{servers[0][1]}:{servers[0][0]};127.0.0.1:{servers[2][1]}:{servers[2][0]}"
    )
    assert start["argv"][start["argv"].index("-r") + 1] == rootservices
    assert start["argv"][start["argv"].index("-d") + 1] == str(first / "store")
    assert start["LD_LIBRARY_PATH"] == str(first / "lib")
    queries = [line["query"] for line in lines if "query" in line]
    assert queries[:2] == [
        "ALTER SYSTEM BOOTSTRAP "
        f"REGION 'sys_region' ZONE 'zone1' SERVER '127.0.0.1:{servers[0][1]}', "
        f"REGION 'sys_region' ZONE 'zone2' SERVER '127.0.0.1:{servers[2][1]}'",
        f"ALTER SYSTEM ADD SERVER '127.0.0.1:{servers[1][1]}' ZONE 'zone1'",
    ]
    assert queries[2] == f"ALTER USER root IDENTIFIED BY '{PASSWORD}'"
    assert (first / "lib" / "libfake.so").is_file()

    cluster_id = created.json()["data"]["clusterId"]
    assert client.get(f"/api/v2/ob/clusters/{cluster_id}").json()["data"]["status"] == "RUNNING"

    # A zone and a server join the running cluster through one of its servers.
    zone3, extra = (free_port(), free_port()), (free_port(), free_port())
    for path, new in (
        ("zones", {"name": "zone3", "servers": [_server(host_id, zone3, tmp_path)]}),
        ("servers", {"zoneName": "zone2", "servers": [_server(host_id, extra, tmp_path)]}),
    ):
        added = client.post(f"/api/v2/ob/clusters/{cluster_id}/{path}", json=new)
        assert added.status_code == 200, added.text
        task = wait_task(client, added.json()["data"]["id"])
        assert task["status"] == "SUCCESSFUL", failed_logs(client, task)
    lines = [json.loads(line) for line in (first / "log" / "observer.log").read_text().splitlines()]
    assert [line["query"] for line in lines if "query" in line][3:] == [
        "ALTER SYSTEM ADD ZONE 'zone3'",
        "ALTER SYSTEM START ZONE 'zone3'",
        f"ALTER SYSTEM ADD SERVER '127.0.0.1:{zone3[1]}' ZONE 'zone3'",
        f"ALTER SYSTEM ADD SERVER '127.0.0.1:{extra[1]}' ZONE 'zone2'",
    ]
    joined = tmp_path / f"ob{zone3[0]}" / "log" / "observer.log"
    (start,) = [json.loads(line) for line in joined.read_text().splitlines() if '"argv"' in line]
    assert start["argv"][start["argv"].index("-r") + 1] == rootservices
    cluster = client.get(f"/api/v2/ob/clusters/{cluster_id}").json()["data"]
    assert [len(zone["servers"]) for zone in cluster["zones"]] == [2, 2, 1]
    refused = client.delete(f"/api/v2/ob/clusters/{cluster_id}/zones/zone3")
    assert refused.status_code == 400
    assert "DELETE SERVER" in refused.json()["error"]["message"]

    deleted = client.delete(f"/api/v2/ob/clusters/{cluster_id}?purge=true")
    task = wait_task(client, deleted.json()["data"]["id"])
    assert task["status"] == "SUCCESSFUL", failed_logs(client, task)
    assert list(tmp_path.iterdir()) == []
