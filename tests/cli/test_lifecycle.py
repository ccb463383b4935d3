"""`obpilot cluster create|delete|forget`, `zone add|delete`, `server add|delete`.

The server's routes for these were being written when these tests were: the tests marked
FAKE run against tests/cli/fake_api.py and move to the real `stack` once POST/DELETE
/api/v2/ob/clusters, .../zones and .../servers(/batchDelete) exist. The refusal of a
taken-over cluster runs against the real server already."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.conftest import Cli, Stack
from tests.cli.fake_api import FakeApi, Seen, error, ok, task
from tests.support.lifecycle import free_port

CLUSTERS = "/api/v2/ob/clusters"


def _cluster(origin: str = "CREATED") -> dict[str, Any]:
    return {
        "id": 7,
        "name": "c2",
        "status": "RUNNING",
        "origin": origin,
        "zones": [
            {
                "name": "zone1",
                "status": "RUNNING",
                "servers": [
                    {"id": 11, "ip": "10.0.0.5", "sqlPort": 2881, "zoneName": "zone1"},
                    {"id": 12, "ip": "10.0.0.6", "sqlPort": 2881, "zoneName": "zone1"},
                ],
            }
        ],
    }


def _with_cluster(fake: FakeApi, origin: str = "CREATED") -> None:
    cluster = _cluster(origin)
    fake.on("GET", f"{CLUSTERS}/7", ok(cluster))
    page = {"contents": [cluster], "page": {"totalElements": 1}}
    fake.on("GET", CLUSTERS, ok(page))


BODY = {
    "name": "c2",
    "rpmName": "oceanbase-ce-4.3.5.0-100000202024123117.el7.x86_64.rpm",
    "type": "PRIMARY",
    "password": "Root-pass-123",
    "zones": [{"name": "zone1", "servers": [3, {"hostId": 4, "sqlPort": 2881, "homePath": "/ob"}]}],
}


def test_create_from_yaml_follows_the_task_and_prints_the_id(  # FAKE
    fake: FakeApi, cli: Cli, tmp_path: Path
) -> None:
    created = fake.add_task(task(31, "Create OB cluster"))
    fake.on("POST", CLUSTERS, ok({**created, "status": "RUNNING", "clusterId": 7}))
    spec = tmp_path / "cluster.yaml"
    spec.write_text(yaml.safe_dump(BODY))

    result = cli("cluster", "create", "-f", str(spec), "-y")
    assert result.exit_code == 0, result.output
    assert fake.requests("POST", CLUSTERS)[0].json() == BODY
    assert result.stdout.splitlines() == [
        "Task 31 Create OB cluster: SUCCESSFUL",
        "Cluster c2: id 7",
    ]
    assert "cluster c2 gets id 7 (task 31)" in result.stderr
    assert "[2/2] Act: 1/1 done" in result.stderr

    # JSON on stdin; the final task with the cluster's id as a document.
    piped = cli("cluster", "create", "-f", "-", "-y", "-o", "json", input=json.dumps(BODY))
    assert piped.exit_code == 0, piped.output
    document = json.loads(piped.stdout)
    assert (document["clusterId"], document["status"]) == (7, "SUCCESSFUL")

    later = cli("cluster", "create", "-f", str(spec), "-y", "--no-wait")
    assert later.exit_code == 0, later.output
    assert later.stdout.strip() == "31"
    assert "obpilot task watch 31" in later.stderr


def test_create_shows_each_finding_of_a_refused_body(  # FAKE
    fake: FakeApi, cli: Cli, tmp_path: Path
) -> None:
    findings = [
        {
            "object": "body",
            "field": "zones[0].servers[1].sqlPort",
            "rejectedValue": 0,
            "message": "must be between 1025 and 65535",
        },
        {"object": "body", "field": "rpmName", "rejectedValue": "x", "message": "no such package"},
    ]
    fake.on("POST", CLUSTERS, error(400, "COM10400", "The request is invalid", findings))
    spec = tmp_path / "cluster.json"
    spec.write_text(json.dumps(BODY))
    refused = cli("cluster", "create", "-f", str(spec), "-y")
    assert refused.exit_code == 2, refused.output
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("error: The request is invalid (COM10400, HTTP 400")
    assert lines[1:] == [
        "  zones[0].servers[1].sqlPort: must be between 1025 and 65535",
        "  rpmName: no such package",
    ]

    spec.write_text("- not\n- a mapping\n")
    assert cli("cluster", "create", "-f", str(spec), "-y").exit_code == 2
    assert cli("cluster", "create", "-f", str(tmp_path / "missing.yaml"), "-y").exit_code == 2
    unconfirmed = cli("cluster", "create", "-f", "-", input=json.dumps(BODY))
    assert unconfirmed.exit_code == 2
    assert "-y" in unconfirmed.stderr


def test_a_failed_create_reports_like_a_stop(  # FAKE
    fake: FakeApi, cli: Cli, tmp_path: Path
) -> None:
    failed = fake.add_task(task(32, "Create OB cluster", status="FAILED"))
    fake.on("POST", CLUSTERS, ok({**failed, "status": "RUNNING", "clusterId": 8}))
    spec = tmp_path / "cluster.yaml"
    spec.write_text(yaml.safe_dump(BODY))
    result = cli("cluster", "create", "-f", str(spec), "-y")
    assert result.exit_code == 1, result.output
    assert "cluster c2 gets id 8" in result.stderr
    assert "Failed subtask 322 Act: it broke" in result.stderr
    assert "obpilot task retry 32" in result.stderr


def test_delete_asks_for_the_name_and_ends_with_the_cluster_gone(  # FAKE
    fake: FakeApi, cli: Cli
) -> None:
    _with_cluster(fake)
    deleted = fake.add_task(task(40, "Delete OB cluster"))
    fake.on("DELETE", f"{CLUSTERS}/7", ok(deleted))

    unconfirmed = cli("cluster", "delete", "c2")
    assert unconfirmed.exit_code == 2
    assert not fake.requests("DELETE", f"{CLUSTERS}/7")
    assert cli("cluster", "delete", "c2", "--keep-data", "--purge", "-y").exit_code == 2

    # The task ended but the cluster is still answered: not a success.
    still = cli("cluster", "delete", "c2", "--yes")
    assert still.exit_code == 1, still.output
    assert "still there" in still.stderr

    gone = {"answer": ok(_cluster())}

    def get_cluster(_seen: Seen) -> Any:
        return gone["answer"]

    def delete(seen: Seen) -> Any:
        gone["answer"] = error(404, "OBE11001", "OB cluster 7 not found")
        return ok(deleted)

    fake.on("GET", f"{CLUSTERS}/7", get_cluster)
    fake.on("DELETE", f"{CLUSTERS}/7", delete)
    result = cli("cluster", "delete", "7", "--purge", "-y")
    assert result.exit_code == 0, result.output
    assert fake.requests("DELETE", f"{CLUSTERS}/7")[-1].query == {"purge": ["true"]}
    assert "Task 40 Delete OB cluster: SUCCESSFUL" in result.stdout
    assert "cluster c2 (id 7) is deleted" in result.stderr

    gone["answer"] = ok(_cluster())
    later = cli("cluster", "delete", "c2", "--keep-data", "-y", "--no-wait")
    assert later.exit_code == 0, later.output
    assert later.stdout.strip() == "40"
    assert fake.requests("DELETE", f"{CLUSTERS}/7")[-1].query == {"keepData": ["true"]}


def test_a_taken_over_cluster_is_forgotten_not_deleted(  # FAKE
    fake: FakeApi, cli: Cli
) -> None:
    _with_cluster(fake, origin="TAKEN_OVER")
    fake.on("DELETE", f"{CLUSTERS}/7", ok(None))
    refused = cli("cluster", "delete", "c2", "-y")
    assert refused.exit_code == 2, refused.output
    assert "obpilot cluster forget c2" in refused.stderr
    assert not fake.requests("DELETE", f"{CLUSTERS}/7")

    forgotten = cli("cluster", "forget", "c2", "-y")
    assert forgotten.exit_code == 0, forgotten.output
    assert fake.requests("DELETE", f"{CLUSTERS}/7")[0].query == {"keepProcesses": ["true"]}
    assert "forgotten" in forgotten.stderr


def test_the_real_server_refuses_to_delete_a_taken_over_cluster(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    refused = cli("cluster", "delete", "demo", "-y")
    assert refused.exit_code == 2, refused.output
    assert "forget" in refused.stderr
    assert stack.api("GET", f"{CLUSTERS}/{stack.cluster_id}")["status"] == "RUNNING"


def test_zone_and_server_add_and_delete(fake: FakeApi, cli: Cli) -> None:  # FAKE
    _with_cluster(fake)
    operation = fake.add_task(task(50, "Add OB zone"))
    for method, path in (
        ("POST", f"{CLUSTERS}/7/zones"),
        ("DELETE", f"{CLUSTERS}/7/zones/zone1"),
        ("POST", f"{CLUSTERS}/7/servers"),
        ("POST", f"{CLUSTERS}/7/servers/batchDelete"),
    ):
        fake.on(method, path, ok(operation))

    added = cli(
        "zone",
        "add",
        "c2",
        "zone2",
        "--server",
        "3",
        "--server",
        "4:2881:/data/ob",
        "--idc",
        "hz1",
        "-y",
    )
    assert added.exit_code == 0, added.output
    assert fake.requests("POST", f"{CLUSTERS}/7/zones")[0].json() == {
        "name": "zone2",
        "servers": [3, {"hostId": 4, "sqlPort": 2881, "homePath": "/data/ob"}],
        "idcName": "hz1",
    }
    assert "Task 50 Add OB zone: SUCCESSFUL" in added.stdout
    assert cli("zone", "add", "c2", "zone2", "--server", "x:1", "-y").exit_code == 2
    assert cli("zone", "add", "c2", "zone2", "-y").exit_code == 2  # no --server

    assert cli("zone", "delete", "c2", "zone1", "-y").exit_code == 0
    assert fake.requests("DELETE", f"{CLUSTERS}/7/zones/zone1")
    assert cli("zone", "delete", "c2", "nozone", "-y").exit_code == 2

    grown = cli("server", "add", "c2", "--zone", "zone1", "-s", "5:2882", "-y", "--no-wait")
    assert grown.exit_code == 0, grown.output
    assert grown.stdout.strip() == "50"
    assert fake.requests("POST", f"{CLUSTERS}/7/servers")[0].json() == {
        "zoneName": "zone1",
        "servers": [{"hostId": 5, "sqlPort": 2882}],
    }

    shrunk = cli("server", "delete", "c2", "11", "10.0.0.6:2881", "-y", "-o", "json")
    assert shrunk.exit_code == 0, shrunk.output
    assert fake.requests("POST", f"{CLUSTERS}/7/servers/batchDelete")[0].json() == {
        "servers": [11, 12]
    }
    assert json.loads(shrunk.stdout)["status"] == "SUCCESSFUL"
    assert cli("server", "delete", "c2", "99", "-y").exit_code == 2


def test_a_busy_cluster_is_a_conflict(fake: FakeApi, cli: Cli) -> None:  # FAKE
    _with_cluster(fake)
    fake.on(
        "POST",
        f"{CLUSTERS}/7/servers",
        error(409, "OBE11020", "OB cluster c2 is busy with task 9"),
    )
    busy = cli("server", "add", "c2", "--zone", "zone1", "-s", "5", "-y")
    assert busy.exit_code == 3, busy.output
    assert "OBE11020" in busy.stderr


def test_the_real_server_refuses_a_bad_body_finding_by_finding(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    cli.login(stack)
    host_id = stack.api("GET", "/api/v2/compute/hosts")["contents"][0]["id"]
    body = {
        **BODY,
        "name": "1bad",
        "password": "short",
        "zones": [
            {
                "name": "zone1",
                "servers": [{"hostId": host_id, "sqlPort": 2881, "homePath": str(tmp_path / "s")}],
            }
        ],
    }
    refused = cli("cluster", "create", "-f", "-", "-y", input=json.dumps(body))
    assert refused.exit_code == 2, refused.output
    findings = [line for line in refused.stderr.splitlines() if line.startswith("  ")]
    assert any(line.startswith("  name: ") for line in findings), refused.stderr
    assert any(line.startswith("  password: ") for line in findings), refused.stderr
    assert [c["name"] for c in stack.api("GET", CLUSTERS)["contents"]] == ["demo"]


def test_a_cluster_built_and_removed_with_the_cli_alone(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    """Against the real server and real seekdb: the wheel uploaded with an AK/SK signature
    over its streamed body, the cluster created from YAML, a zone added, then deleted."""
    wheels = sorted((Path(__file__).resolve().parents[2] / ".cache" / "wheels").glob("*.whl"))
    if not wheels:
        pytest.fail("no pylibseekdb wheel in .cache/wheels (make install downloads it)")
    cli.login(stack)
    uploaded = cli("package", "upload", str(wheels[-1]), "-o", "json")
    assert uploaded.exit_code == 0, uploaded.output
    host_id = stack.api("GET", "/api/v2/compute/hosts")["contents"][0]["id"]
    ports = [free_port(), free_port()]
    servers = tmp_path / "servers"
    spec = tmp_path / "cluster.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "cli_built",
                "rpmName": wheels[-1].name,
                "password": "Hello1234!",
                "zones": [
                    {
                        "name": "zone1",
                        "servers": [
                            {
                                "hostId": host_id,
                                "sqlPort": ports[0],
                                "homePath": str(servers / "a"),
                            }
                        ],
                    }
                ],
            }
        )
    )
    created = cli("cluster", "create", "-f", str(spec), "-y")
    assert created.exit_code == 0, created.output
    cluster = next(c for c in stack.api("GET", CLUSTERS)["contents"] if c["name"] == "cli_built")
    assert (cluster["status"], cluster["origin"]) == ("RUNNING", "CREATED")
    added = cli(
        "zone",
        "add",
        "cli_built",
        "zone2",
        "--server",
        f"{host_id}:{ports[1]}:{servers / 'b'}",
        "-y",
    )
    assert added.exit_code == 0, added.output
    assert len(stack.api("GET", f"{CLUSTERS}/{cluster['id']}")["zones"]) == 2
    deleted = cli("cluster", "delete", "cli_built", "--purge", "-y")
    assert deleted.exit_code == 0, deleted.output
    assert list(servers.iterdir()) == []
