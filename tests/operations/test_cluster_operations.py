"""Stop, start and restart of a cluster of real seekdb servers, through the API."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from obpilot.db.engine import Database
from obpilot.inventory.models import Cluster
from tests.support.fleet import Fleet, process_alive
from tests.support.inventory import add_local_host
from tests.support.operations import cluster_view, server_statuses, task_of, wait_task


async def register(database: Database, fleet: Fleet, **kwargs: object) -> Cluster:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        return await fleet.register(session, host, **kwargs)  # type: ignore[arg-type]


def write_rows(fleet: Fleet, marker: str) -> None:
    for server in fleet.servers:
        connection = server.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE IF NOT EXISTS opstest")
                cursor.execute("CREATE TABLE IF NOT EXISTS opstest.t (v VARCHAR(64))")
                cursor.execute("INSERT INTO opstest.t VALUES (%s)", (marker,))
            connection.commit()
        finally:
            connection.close()


def read_rows(fleet: Fleet, marker: str) -> list[int]:
    counts = []
    for server in fleet.servers:
        connection = server.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM opstest.t WHERE v = %s", (marker,))
                counts.append(int(cursor.fetchone()[0]))  # type: ignore[index]
        finally:
            connection.close()
    return counts


async def test_stop_then_start_three_zones(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    marker = os.urandom(6).hex()
    await asyncio.to_thread(write_rows, fleet, marker)
    pids = [(await fleet.status(s)).pid for s in fleet.servers]
    cluster = await register(database, fleet)

    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/stop")
    assert response.status_code == 200, response.text
    stop = await wait_task(client, response.json()["data"]["id"])
    assert stop["status"] == "SUCCESSFUL", stop
    for server, pid in zip(fleet.servers, pids, strict=True):
        assert pid is not None
        assert not process_alive(pid), f"seekdb {pid} still runs"
        assert not server.answers_sql()
    view = await cluster_view(client, cluster.id)
    assert view["status"] == "STOPPED"
    assert set(server_statuses(view).values()) == {"STOPPED"}
    assert {z["status"] for z in view["zones"]} == {"STOPPED"}
    log = (
        await client.get(
            f"/api/v2/tasks/instances/{stop['id']}/subtasks/"
            f"{next(s['id'] for s in stop['subtasks'] if s['name'] == 'Stop observer process')}/log"
        )
    ).json()["data"]["log"]
    assert "SIGUSR1" in log

    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/start")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "Start OB cluster"
    start = await wait_task(client, response.json()["data"]["id"])
    assert start["status"] == "SUCCESSFUL", start
    assert await asyncio.to_thread(read_rows, fleet, marker) == [1, 1, 1]
    view = await cluster_view(client, cluster.id)
    assert view["status"] == "RUNNING"
    assert set(server_statuses(view).values()) == {"RUNNING"}


async def test_rolling_restart_keeps_a_zone_answering(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    cluster = await register(database, fleet)
    before = [(await fleet.status(s)).pid for s in fleet.servers]
    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/restart")
    assert response.status_code == 200, response.text
    task_id = response.json()["data"]["id"]
    assert "rolling=true" in response.json()["data"]["context"]

    samples: list[int] = []
    while (await task_of(client, task_id))["status"] == "RUNNING":
        answering = await asyncio.gather(*(asyncio.to_thread(s.answers_sql) for s in fleet.servers))
        samples.append(sum(answering))
        await asyncio.sleep(0.2)
    task = await task_of(client, task_id)
    assert task["status"] == "SUCCESSFUL", task
    assert samples
    assert min(samples) >= 2, samples  # one zone down at a time, never more
    after = [(await fleet.status(s)).pid for s in fleet.servers]
    assert all(a != b for a, b in zip(before, after, strict=True)), (before, after)
    view = await cluster_view(client, cluster.id)
    assert view["status"] == "RUNNING"
    # Zone by zone: each zone's start finished before the next zone's stop began.
    subtasks = task["subtasks"]
    starts = [s for s in subtasks if s["name"] == "Start observer process"]
    stops = [s for s in subtasks if s["name"] == "Stop observer process"]
    assert len(starts) == len(stops) == 3
    for earlier_start, later_stop in zip(starts, stops[1:], strict=False):
        assert earlier_start["finishTime"] <= later_stop["startTime"]


async def test_two_concurrent_stops_give_one_task_and_one_409(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    cluster = await register(database, running_fleet)
    url = f"/api/v2/ob/clusters/{cluster.id}/stop"
    first, second = await asyncio.gather(client.post(url), client.post(url))
    answers = sorted([first, second], key=lambda r: r.status_code)
    assert [r.status_code for r in answers] == [200, 409], [r.text for r in answers]
    task_id = answers[0].json()["data"]["id"]
    error = answers[1].json()["error"]
    assert error["code"] == "OBE11020"
    assert f"task {task_id}" in error["message"]
    listed = (await client.get(f"/api/v2/tasks/instances?clusterId={cluster.id}")).json()
    assert listed["data"]["page"]["totalElements"] == 1
    assert (await wait_task(client, task_id))["status"] == "SUCCESSFUL"


async def test_state_rules(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    cluster = await register(database, running_fleet)
    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/start")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "OBE11007"
    assert "RUNNING" in response.json()["error"]["message"]
    tasks = (await client.get(f"/api/v2/tasks/instances?clusterId={cluster.id}")).json()
    assert tasks["data"]["page"]["totalElements"] == 0
    response = await client.post("/api/v2/ob/clusters/999999/stop")
    assert response.json()["error"]["code"] == "OBE11001"
    response = await client.post(
        f"/api/v2/ob/clusters/{cluster.id}/stop", json={"force": "sometimes"}
    )
    assert response.status_code == 400
    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/stop", json={"nope": True})
    assert response.status_code == 400


async def test_cluster_viewer_is_refused_and_nothing_changes(
    client: httpx.AsyncClient,
    database: Database,
    running_fleet: Fleet,
    client_as: object,
) -> None:
    cluster = await register(database, running_fleet)
    viewer = await client_as("CLUSTER_VIEWER")  # type: ignore[operator]
    for action in ("stop", "start", "restart"):
        response = await viewer.post(f"/api/v2/ob/clusters/{cluster.id}/{action}")
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] in ("OBE11065", "IAM11000")
    zone_stop = await viewer.post(f"/api/v2/ob/clusters/{cluster.id}/zones/zone1/stop")
    assert zone_stop.status_code == 403
    assert (await viewer.get(f"/api/v2/ob/clusters/{cluster.id}")).status_code == 200
    tasks = (await client.get(f"/api/v2/tasks/instances?clusterId={cluster.id}")).json()
    assert tasks["data"]["page"]["totalElements"] == 0
    assert all(s.answers_sql() for s in running_fleet.servers)
    assert (await cluster_view(client, cluster.id))["status"] == "RUNNING"


@pytest.mark.parametrize("force", [True, False])
async def test_server_and_zone_operations(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet, force: bool
) -> None:
    fleet = running_fleet
    cluster = await register(database, fleet)
    servers = {
        s["zoneName"]: s
        for s in (await client.get(f"/api/v2/ob/clusters/{cluster.id}/servers")).json()["data"][
            "contents"
        ]
    }
    base = f"/api/v2/ob/clusters/{cluster.id}"

    stop = await client.post(f"{base}/servers/{servers['zone1']['id']}/stop", json={"force": force})
    assert stop.status_code == 200, stop.text
    assert stop.json()["data"]["name"] == "Stop OB server"
    assert "subtasks" in stop.json()["data"]
    assert (await wait_task(client, stop.json()["data"]["id"]))["status"] == "SUCCESSFUL"
    assert not fleet.servers[0].answers_sql()
    view = await cluster_view(client, cluster.id)
    assert server_statuses(view) == {"zone1": "STOPPED", "zone2": "RUNNING", "zone3": "RUNNING"}
    assert view["status"] == "RUNNING"

    stop_zone = await client.post(f"{base}/zones/zone2/stop")
    assert (await wait_task(client, stop_zone.json()["data"]["id"]))["status"] == "SUCCESSFUL"
    last = await client.post(f"{base}/servers/{servers['zone3']['id']}/stop")
    assert last.status_code == 409
    assert last.json()["error"]["code"] == "OBE19020"
    assert "stop the cluster instead" in last.json()["error"]["message"]
    last_zone = await client.post(f"{base}/zones/zone3/stop")
    assert last_zone.status_code == 409

    restart = await client.post(
        f"{base}/servers/{servers['zone3']['id']}/restart", json={"force": True}
    )
    assert (await wait_task(client, restart.json()["data"]["id"]))["status"] == "SUCCESSFUL"
    start_zone = await client.post(f"{base}/zones/zone2/start")
    assert (await wait_task(client, start_zone.json()["data"]["id"]))["status"] == "SUCCESSFUL"
    start = await client.post(f"{base}/servers/{servers['zone1']['id']}/start")
    assert (await wait_task(client, start.json()["data"]["id"]))["status"] == "SUCCESSFUL"
    assert all(s.answers_sql() for s in fleet.servers)
    view = await cluster_view(client, cluster.id)
    assert set(server_statuses(view).values()) == {"RUNNING"}
    assert {z["status"] for z in view["zones"]} == {"RUNNING"}
