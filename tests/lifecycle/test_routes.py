"""Creating and deleting clusters through the API, end to end: a real `obpilot serve`, the
real pylibseekdb wheel uploaded, real seekdb servers created on the local host, the way
OCP's field clients drive it (POST the cluster, poll GET /api/v2/tasks/{id}, read the
cluster, DELETE it, poll again, expect 404)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.support.lifecycle import cluster_body, free_port, run_sql, wait_task


def test_create_then_delete_as_a_field_client_does(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, rpm = api
    ports = [free_port(), free_port()]
    created = client.post(
        "/api/v2/ob/clusters", json=cluster_body("lc_one", host_id, rpm, tmp_path, ports)
    )
    assert created.status_code == 200, created.text
    data = created.json()["data"]
    assert data["name"] == "Create primary OB cluster"
    assert data["clusterId"] == data["cluster"]["id"]
    task = wait_task(client, data["id"])
    assert task["status"] == "SUCCESSFUL", task
    cluster = client.get(f"/api/v2/ob/clusters/{data['clusterId']}").json()["data"]
    assert cluster["status"] == "RUNNING"
    assert cluster["origin"] == "CREATED"
    assert client.get(f"/api/v2/compute/hosts/{host_id}").json()["data"]["status"] == "ONLINE"
    assert cluster["fullVersion"].startswith("1.4.0.0")  # what the binary reports
    for port in ports:  # root has the cluster's password now
        home = tmp_path / f"s{port}"
        assert (home / ".obpilot-owner").is_file()
        assert (home / "bin" / "seekdb").is_file()

    deleted = client.delete(f"/api/v2/ob/clusters/{data['clusterId']}")
    assert deleted.status_code == 200, deleted.text
    assert wait_task(client, deleted.json()["data"]["id"])["status"] == "SUCCESSFUL"
    gone = client.get(f"/api/v2/ob/clusters/{data['clusterId']}")
    assert gone.status_code == 404
    host = client.get(f"/api/v2/compute/hosts/{host_id}").json()["data"]
    assert host["status"] == "AVAILABLE"  # no other cluster runs on it now
    assert gone.json()["error"]["code"] == "OBE11001"
    task_id = deleted.json()["data"]["id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"s{port}.deleted-{task_id}" for port in ports
    )
    # The paths are free again: the same request creates the cluster anew.
    again = client.post(
        "/api/v2/ob/clusters", json=cluster_body("lc_one", host_id, rpm, tmp_path, ports)
    )
    assert wait_task(client, again.json()["data"]["id"])["status"] == "SUCCESSFUL"
    purged = client.delete(f"/api/v2/ob/clusters/{again.json()['data']['clusterId']}?purge=true")
    assert wait_task(client, purged.json()["data"]["id"])["status"] == "SUCCESSFUL"
    assert not any(
        p.name.startswith(f"s{ports[0]}.deleted-{purged.json()['data']['id']}")
        for p in tmp_path.iterdir()
    )


def test_keep_data_stops_and_forgets_but_keeps_every_file(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, rpm = api
    port = free_port()
    created = client.post(
        "/api/v2/ob/clusters", json=cluster_body("lc_keep", host_id, rpm, tmp_path, [port])
    )
    assert wait_task(client, created.json()["data"]["id"])["status"] == "SUCCESSFUL"
    cluster_id = created.json()["data"]["clusterId"]
    deleted = client.delete(f"/api/v2/ob/clusters/{cluster_id}?keepData=true")
    assert wait_task(client, deleted.json()["data"]["id"])["status"] == "SUCCESSFUL"
    assert client.get(f"/api/v2/ob/clusters/{cluster_id}").status_code == 404
    assert (tmp_path / f"s{port}" / "bin" / "seekdb").is_file()
    assert (tmp_path / f"s{port}" / "store").is_dir()


def test_refusals_come_all_at_once_and_write_nothing(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, rpm = api
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    (tmp_path / f"s{taken + 0}").mkdir()
    (tmp_path / f"s{taken}" / "someone.txt").write_text("not obpilot's")
    try:
        body = cluster_body("lc_refused", host_id, rpm, tmp_path, [taken])
        answer = client.post("/api/v2/ob/clusters", json=body)
    finally:
        busy.close()
    assert answer.status_code == 409, answer.text
    problems = answer.json()["error"]["subErrors"]
    messages = " | ".join(p["message"] for p in problems)
    assert f"port {taken}" in messages
    assert "is in use by pid" in messages
    assert "exists and is not empty (someone.txt)" in messages
    assert {p["field"] for p in problems} == {"zones[0].servers[0]"}

    bad = client.post(
        "/api/v2/ob/clusters",
        json={**cluster_body("1bad", host_id, rpm, tmp_path, [free_port()]), "password": "short"},
    )
    assert bad.status_code == 400
    assert {p["field"] for p in bad.json()["error"]["subErrors"]} == {"name", "password"}

    unknown = client.post(
        "/api/v2/ob/clusters",
        json=cluster_body("lc_nopkg", host_id, "nothing.rpm", tmp_path, [free_port()]),
    )
    assert unknown.status_code == 404

    other_arch = cluster_body("lc_arch", host_id, rpm, tmp_path, [free_port()])
    other_arch["zones"][0]["architecture"] = "aarch64"
    answer = client.post("/api/v2/ob/clusters", json=other_arch)
    assert answer.status_code == 400
    (problem,) = answer.json()["error"]["subErrors"]
    assert problem["field"] == "zones[0].architecture"
    assert problem["message"].endswith("is for x86_64, not aarch64")

    big = cluster_body("lc_big", host_id, rpm, tmp_path, [free_port()])
    big["zones"][0]["servers"][0]["parameters"] = {"memory_budget": "100000G"}
    answer = client.post("/api/v2/ob/clusters", json=big)
    assert answer.status_code == 409
    assert "of memory available" in answer.json()["error"]["message"]

    standby = client.post(
        "/api/v2/ob/clusters",
        json={**cluster_body("lc_sb", host_id, rpm, tmp_path, [free_port()]), "type": "STANDBY"},
    )
    assert standby.status_code == 400
    assert "standby" in standby.text
    obproxy = client.post(
        "/api/v2/ob/clusters",
        json={**cluster_body("lc_px", host_id, rpm, tmp_path, [free_port()]), "obproxyList": []},
    )
    assert obproxy.status_code == 400
    assert "obproxyList" in obproxy.text

    names = [c["name"] for c in client.get("/api/v2/ob/clusters").json()["data"]["contents"]]
    assert not {"lc_refused", "1bad", "lc_nopkg", "lc_big", "lc_sb", "lc_px"} & set(names)


def test_client_token_answers_the_same_task(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, rpm = api
    body = {**cluster_body("lc_token", host_id, rpm, tmp_path, [free_port()]), "clientToken": "t-1"}
    first = client.post("/api/v2/ob/clusters", json=body).json()["data"]
    second = client.post("/api/v2/ob/clusters", json=body).json()["data"]
    assert (second["id"], second["clusterId"]) == (first["id"], first["clusterId"])
    other = client.post("/api/v2/ob/clusters", json={**body, "password": "Other-pass-1"})
    assert other.status_code == 409
    assert wait_task(client, first["id"])["status"] == "SUCCESSFUL"

    # Tokens are each user's own: another creator's same token and body is a new request
    # (here refused: the name is taken), never the first user's cluster or task.
    user = {"username": "token_user", "password": "Token-pass-1", "roles": ["CLUSTER_MANAGER"]}
    assert client.post("/api/v2/iam/users", json=user).status_code == 200
    with httpx.Client(
        base_url=client.base_url, auth=("token_user", "Token-pass-1"), timeout=60
    ) as another:
        theirs = another.post("/api/v2/ob/clusters", json=body)
    assert theirs.status_code == 409, theirs.text
    assert "clientToken" not in theirs.json()["error"]["message"]
    assert "data" not in theirs.json() or theirs.json()["data"] is None
    deleted = client.delete(f"/api/v2/ob/clusters/{first['clusterId']}?purge=true")
    assert wait_task(client, deleted.json()["data"]["id"])["status"] == "SUCCESSFUL"


def test_a_failed_create_rolls_back_to_nothing(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    """The port passes the checks but the server cannot bind it (a socket holds it without
    listening, which a look at listeners does not see, as when it is taken after the
    check): the start fails, and rolling the task back stops nothing it did not start and
    removes only its own directories; the name is free again."""
    client, host_id, rpm = api
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    other = tmp_path / "not-ours"
    other.mkdir()
    try:
        body = cluster_body("lc_rolled", host_id, rpm, tmp_path, [port])
        created = client.post("/api/v2/ob/clusters", json=body).json()["data"]
        task = wait_task(client, created["id"])
        assert task["status"] == "FAILED"
        (failed,) = [s for s in task["subtasks"] if s["status"] == "FAILED"]
        assert failed["name"] == "Start observer process with param"
        assert (tmp_path / f"s{port}" / ".obpilot-owner").is_file()
        rolled = client.post(f"/api/v2/tasks/instances/{created['id']}/rollback")
        assert rolled.status_code == 200, rolled.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/api/v2/tasks/{created['id']}").json()["data"]["status"]
            if status not in ("RUNNING", "FAILED"):
                break
            time.sleep(0.3)
    finally:
        holder.close()
    assert client.get(f"/api/v2/ob/clusters/{created['clusterId']}").status_code == 404
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-ours"]
    again = client.post("/api/v2/ob/clusters", json=body).json()["data"]
    assert wait_task(client, again["id"])["status"] == "SUCCESSFUL"  # the name is free
    purged = client.delete(f"/api/v2/ob/clusters/{again['clusterId']}?purge=true")
    assert wait_task(client, purged.json()["data"]["id"])["status"] == "SUCCESSFUL"


def test_a_created_cluster_keeps_its_rows_and_grows_and_shrinks(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, rpm = api
    first, second, third = free_port(), free_port(), free_port()
    created = client.post(
        "/api/v2/ob/clusters", json=cluster_body("lc_grow", host_id, rpm, tmp_path, [first])
    )
    assert wait_task(client, created.json()["data"]["id"])["status"] == "SUCCESSFUL"
    cluster_id = created.json()["data"]["clusterId"]
    run_sql(
        first,
        "CREATE DATABASE kept",
        "CREATE TABLE kept.t (id INT PRIMARY KEY)",
        "INSERT INTO kept.t VALUES (1), (2)",
    )
    for action in ("stop", "start"):
        task = client.post(f"/api/v2/ob/clusters/{cluster_id}/{action}").json()["data"]
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
    assert run_sql(first, "SELECT COUNT(*) FROM kept.t") == [(2,)]

    zone = client.post(
        f"/api/v2/ob/clusters/{cluster_id}/zones",
        json={
            "name": "zone2",
            "servers": [{"hostId": host_id, "sqlPort": second, "homePath": str(tmp_path / "z2")}],
        },
    )
    assert zone.status_code == 200, zone.text
    assert wait_task(client, zone.json()["data"]["id"])["status"] == "SUCCESSFUL"
    server = client.post(
        f"/api/v2/ob/clusters/{cluster_id}/servers",
        json={
            "zoneName": "zone1",
            "servers": [{"hostId": host_id, "sqlPort": third, "homePath": str(tmp_path / "z1b")}],
        },
    )
    assert wait_task(client, server.json()["data"]["id"])["status"] == "SUCCESSFUL"
    cluster = client.get(f"/api/v2/ob/clusters/{cluster_id}").json()["data"]
    assert [len(z["servers"]) for z in cluster["zones"]] == [2, 1]
    assert cluster["status"] == "RUNNING"
    assert run_sql(third, "SELECT 1") == [(1,)]  # the new server has the cluster's password

    added = next(s for s in cluster["zones"][0]["servers"] if s["sqlPort"] == third)
    removed = client.post(
        f"/api/v2/ob/clusters/{cluster_id}/servers/batchDelete", json={"servers": [added["id"]]}
    )
    assert wait_task(client, removed.json()["data"]["id"])["status"] == "SUCCESSFUL"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("z1b")) == [
        f"z1b.deleted-{removed.json()['data']['id']}"
    ]
    zone_gone = client.delete(f"/api/v2/ob/clusters/{cluster_id}/zones/zone1")
    assert wait_task(client, zone_gone.json()["data"]["id"])["status"] == "SUCCESSFUL"
    cluster = client.get(f"/api/v2/ob/clusters/{cluster_id}").json()["data"]
    assert [z["name"] for z in cluster["zones"]] == ["zone2"]
    refused = client.delete(f"/api/v2/ob/clusters/{cluster_id}/zones/zone2")
    assert refused.status_code == 400
    assert "delete the cluster" in refused.json()["error"]["message"]
    deleted = client.delete(f"/api/v2/ob/clusters/{cluster_id}?purge=true")
    assert wait_task(client, deleted.json()["data"]["id"])["status"] == "SUCCESSFUL"


def test_a_delete_touches_nothing_without_the_clusters_marker(
    api: tuple[httpx.Client, int, str], tmp_path: Path
) -> None:
    client, host_id, rpm = api
    port = free_port()
    created = client.post(
        "/api/v2/ob/clusters", json=cluster_body("lc_marker", host_id, rpm, tmp_path, [port])
    ).json()["data"]
    assert wait_task(client, created["id"])["status"] == "SUCCESSFUL"
    marker = tmp_path / f"s{port}" / ".obpilot-owner"
    kept = marker.read_text()
    marker.unlink()
    deleted = client.delete(f"/api/v2/ob/clusters/{created['clusterId']}").json()["data"]
    task = wait_task(client, deleted["id"])
    assert task["status"] == "FAILED"
    (failed,) = [s for s in task["subtasks"] if s["status"] == "FAILED"]
    assert failed["name"] == "Prepare delete cluster"
    log = client.get(f"/api/v2/tasks/instances/{deleted['id']}/subtasks/{failed['id']}/log").json()[
        "data"
    ]["log"]
    assert "has no obpilot marker" in log
    assert run_sql(port, "SELECT 1") == [(1,)]  # nothing was stopped or moved
    marker.write_text(kept)
    retried = client.post(f"/api/v2/tasks/instances/{deleted['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert wait_task(client, deleted["id"])["status"] == "SUCCESSFUL"
    assert client.get(f"/api/v2/ob/clusters/{created['clusterId']}").status_code == 404


def test_deleting_an_unknown_cluster_is_a_404_whatever_its_query(
    api: tuple[httpx.Client, int, str],
) -> None:
    client, _, _ = api
    for query in ("", "?keepProcesses=true", "?keepData=true", "?purge=true"):
        answer = client.delete(f"/api/v2/ob/clusters/987654{query}")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "OBE11001"
