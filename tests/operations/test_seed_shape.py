"""The stop call for a one-zone, one-server cluster answers OCP's sample field for field
(ids and times aside): /work/shared/seeds/000_9ba014552f62d6e3.txt."""

from __future__ import annotations

import re

import httpx

from obpilot.db.engine import Database
from tests.support.engine_tasks import SEED_STOP_NAMES
from tests.support.inventory import add_cluster, add_local_host
from tests.support.operations import wait_task


def chain(tasks: list[dict[str, object]]) -> list[str]:
    """Walks the DAG from its root through `downstreams`; checks links agree both ways."""
    by_id = {task["id"]: task for task in tasks}
    for task in tasks:
        for down in task["downstreams"]:  # type: ignore[attr-defined]
            assert task["id"] in by_id[down]["upstreams"]  # type: ignore[operator]
    roots = [task for task in tasks if not task["upstreams"]]
    assert len(roots) == 1
    names, node = [], roots[0]
    while True:
        names.append(str(node["name"]))
        downs = node["downstreams"]
        assert isinstance(downs, list)
        if not downs:
            return names
        assert len(downs) == 1
        node = by_id[downs[0]]


async def test_stop_answers_the_seed_shape(client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        cluster = await add_cluster(session, host, name="ob_upgrade", zones=1)
    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/stop")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body) == {
        "data",
        "duration",
        "server",
        "status",
        "successful",
        "timestamp",
        "traceId",
    }
    data = body["data"]
    assert set(data) == {
        "cluster",
        "context",
        "creator",
        "id",
        "name",
        "startTime",
        "status",
        "tasks",
    }
    assert data["cluster"] == {"id": cluster.id, "name": "ob_upgrade", "obClusterId": 100}
    server_id = cluster.zones[0].servers[0].id
    assert data["context"] == (
        "Context(parallelIdx=-1, stringMap={cluster_name=ob_upgrade, "
        f"cluster_id={cluster.id}, former_cluster_status=RUNNING}}, "
        f"listMap={{server_ids=[{server_id}], zone_names=[zone1]}})"
    )
    assert data["creator"]["name"] == "admin"
    assert set(data["creator"]) == {"id", "name"}
    assert data["name"] == "Stop OB cluster"
    assert data["status"] == "RUNNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", data["startTime"])
    tasks = data["tasks"]
    assert len(tasks) == 11
    for task in tasks:
        assert set(task) == {
            "description",
            "downstreams",
            "id",
            "name",
            "operation",
            "status",
            "upstreams",
        }
        assert task["description"] == task["name"]
        assert task["operation"] == "EXECUTE"
    assert chain(tasks) == SEED_STOP_NAMES
    # No process runs under that home: stopping it is verified and already done.
    finished = await wait_task(client, data["id"])
    assert finished["status"] == "SUCCESSFUL", finished
    view = (await client.get(f"/api/v2/ob/clusters/{cluster.id}")).json()["data"]
    assert view["status"] == "STOPPED"
    assert {s["status"] for z in view["zones"] for s in z["servers"]} == {"STOPPED"}
