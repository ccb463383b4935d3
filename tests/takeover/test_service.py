"""Taking over real seekdb servers through the API, and forgetting the cluster again."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from obpilot.db.engine import Database
from obpilot.engine import TaskInstance
from obpilot.inventory.models import Cluster, Host, Server, Zone
from tests.support.fleet import Fleet, FleetServer, process_alive
from tests.support.inventory import add_cluster
from tests.support.operations import cluster_view, wait_task

Json = dict[str, Any]


async def add_local_host(client: httpx.AsyncClient) -> int:
    response = await client.post(
        "/api/v2/compute/hosts",
        json={"name": "local", "innerIpAddress": "127.0.0.1", "kind": "LOCAL"},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["id"])


def seekdb(host_id: int, port: int, home: Path | str, **extra: Any) -> Json:
    return {"hostId": host_id, "kind": "seekdb", "sqlPort": port, "homePath": str(home), **extra}


def body(name: str, *zones: list[Json], **extra: Any) -> Json:
    return {
        "name": name,
        "obClusterId": 7,
        "zones": [{"name": f"zone{i + 1}", "servers": s} for i, s in enumerate(zones)],
        **extra,
    }


async def take_over(client: httpx.AsyncClient, request: Json) -> Json:
    response = await client.post("/api/v2/ob/clusters/takeOver", json=request)
    assert response.status_code == 200, response.text
    data: Json = response.json()["data"]
    return data


async def take_over_and_wait(client: httpx.AsyncClient, request: Json) -> tuple[Json, Json]:
    submitted = await take_over(client, request)
    return submitted, await wait_task(client, submitted["id"])


def failed_check(task: Json) -> str:
    assert task["status"] == "FAILED", task
    messages = [
        s["errorMessage"]
        for s in task["subtasks"]
        if s["name"] == "Check observer process" and s["status"] == "FAILED"
    ]
    assert len(messages) == 1, task["subtasks"]
    return str(messages[0])


async def counts(database: Database) -> tuple[int, ...]:
    async with database.transaction() as session:
        return tuple(
            [
                int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Cluster, Zone, Server, TaskInstance)
            ]
        )


async def test_takeover_registers_what_runs_and_what_is_stopped(
    any_client: httpx.AsyncClient, any_database: Database, pair: Fleet
) -> None:
    client = any_client
    running, stopped = pair.servers
    pid = (await pair.status(running)).pid
    assert pid is not None
    host_id = await add_local_host(client)

    submitted, task = await take_over_and_wait(
        client,
        body(
            "taken",
            [seekdb(host_id, running.port, running.home)],
            # baseDir is the seekdb spelling of homePath
            [
                {
                    "hostId": host_id,
                    "kind": "seekdb",
                    "sqlPort": stopped.port,
                    "baseDir": str(stopped.home),
                }
            ],
        ),
    )

    # Shape A, as OCP answers an operation on a cluster.
    assert submitted["name"] == "Take over OB cluster"
    assert submitted["cluster"]["name"] == "taken"
    assert submitted["cluster"]["obClusterId"] == 7
    assert submitted["context"].startswith("Context(parallelIdx=-1, stringMap={")
    assert submitted["creator"]["name"] == "admin"
    assert [t["name"] for t in submitted["tasks"]] == [
        "Prepare take over OB cluster",
        "Check observer process",
        "Check observer process",
        "Wait node",
        "Update zone status",
        "Update zone status",
        "Update OB cluster status",
    ]
    assert task["status"] == "SUCCESSFUL", task

    view = await cluster_view(client, submitted["cluster"]["id"])
    assert view["status"] == "RUNNING"
    zones = {zone["name"]: zone for zone in view["zones"]}
    assert zones["zone1"]["status"] == "RUNNING"
    assert zones["zone2"]["status"] == "STOPPED"
    first, second = zones["zone1"]["servers"][0], zones["zone2"]["servers"][0]
    assert (first["status"], first["sqlPort"], first["homePath"]) == (
        "RUNNING",
        running.port,
        str(running.home),
    )
    assert re.fullmatch(r"\d+(\.\d+)+", first["version"]), first
    assert view["obVersion"] == first["version"]
    assert (second["status"], second["version"], second["homePath"]) == (
        "STOPPED",
        None,
        str(stopped.home),
    )
    async with any_database.transaction() as session:
        cluster = await session.get_one(Cluster, view["id"])
        assert cluster.operation_task_id is None  # the lock went with the successful task
        assert cluster.root_password_encrypted is None

    # Nothing was started or stopped.
    assert (await pair.status(running)).pid == pid
    assert (await pair.status(stopped)).state == "STOPPED"


async def test_forget_leaves_the_processes_running(client: httpx.AsyncClient, pair: Fleet) -> None:
    running = pair.servers[0]
    pid = (await pair.status(running)).pid
    assert pid is not None
    host_id = await add_local_host(client)
    submitted, task = await take_over_and_wait(
        client, body("forgettable", [seekdb(host_id, running.port, running.home)])
    )
    assert task["status"] == "SUCCESSFUL", task
    cluster_id = submitted["cluster"]["id"]

    refused = await client.delete(f"/api/v2/ob/clusters/{cluster_id}")
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "only forgets" in message
    assert "keepProcesses=true" in message
    assert (await client.get(f"/api/v2/ob/clusters/{cluster_id}")).status_code == 200

    response = await client.delete(f"/api/v2/ob/clusters/{cluster_id}?keepProcesses=true")
    assert response.status_code == 200, response.text
    assert response.json()["successful"] is True
    gone = await client.get(f"/api/v2/ob/clusters/{cluster_id}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "OBE11001"
    assert process_alive(pid)
    assert (await pair.status(running)).pid == pid
    assert running.answers_sql()
    # The host is free again: its servers are forgotten too.
    assert (await client.delete(f"/api/v2/compute/hosts/{host_id}")).status_code == 200


async def test_a_wrong_root_password_fails_the_check_and_keeps_the_cluster_locked(
    client: httpx.AsyncClient, app: FastAPI, database: Database, pair: Fleet
) -> None:
    running = pair.servers[0]
    host_id = await add_local_host(client)
    submitted, task = await take_over_and_wait(
        client,
        body(
            "guarded",
            [seekdb(host_id, running.port, running.home)],
            rootPassword="Not-the-root-password",
        ),
    )
    message = failed_check(task)
    assert "host 127.0.0.1" in message
    assert f"port {running.port}" in message
    assert "denied" in message.lower()
    assert "rootPassword" in message
    cluster_id = submitted["cluster"]["id"]
    async with database.transaction() as session:
        cluster = await session.get_one(Cluster, cluster_id)
        stored = cluster.root_password_encrypted
    assert stored is not None
    assert "Not-the-root-password" not in stored
    assert app.state.secret_box.decrypt(stored) == "Not-the-root-password"
    view = await cluster_view(client, cluster_id)
    assert view["status"] == "TAKINGOVER"
    assert "rootPassword" not in str(view)
    assert "Not-the-root-password" not in str(view)

    # The failed task still holds the cluster: no forgetting it under the task's feet.
    busy = await client.delete(f"/api/v2/ob/clusters/{cluster_id}?keepProcesses=true")
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "OBE11020"
    assert str(task["id"]) in busy.json()["error"]["message"]

    rollback = await client.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    assert rollback.status_code == 200, rollback.text
    assert (await wait_task(client, task["id"]))["status"] == "SUCCESSFUL"
    assert (await client.get(f"/api/v2/ob/clusters/{cluster_id}")).status_code == 404
    assert running.answers_sql()


LOCK_THEN_SLEEP = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, str(os.getpid()).encode())
os.set_inheritable(fd, True)  # the lock stays with the pid through exec
os.execvp("sleep", ["sleep", "300"])
"""


@pytest.fixture
def sleeper_holding(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A home whose run/seekdb.pid is locked by `sleep` and names its pid: a pid file held
    by another program."""
    home = tmp_path / "held"
    (home / "run").mkdir(parents=True)
    (home / "store").mkdir()
    sleeper = subprocess.Popen(
        [sys.executable, "-c", LOCK_THEN_SLEEP, str(home / "run" / "seekdb.pid")],
        start_new_session=True,
    )
    try:
        for _ in range(200):
            if os.path.basename(os.readlink(f"/proc/{sleeper.pid}/exe")) == "sleep":
                break
            subprocess.run(["sleep", "0.02"], check=True)
        assert os.path.basename(os.readlink(f"/proc/{sleeper.pid}/exe")) == "sleep"
        yield home, sleeper
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_a_pid_file_held_by_another_program_fails_and_rollback_forgets(
    any_client: httpx.AsyncClient,
    any_database: Database,
    pair: Fleet,
    sleeper_holding: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    client = any_client
    home, sleeper = sleeper_holding
    running = pair.servers[0]
    host_id = await add_local_host(client)
    port = running.port + 1 if running.port < 65535 else running.port - 1
    submitted, task = await take_over_and_wait(
        client,
        body(
            "held",
            [seekdb(host_id, running.port, running.home)],
            [seekdb(host_id, port, home)],
        ),
    )
    message = failed_check(task)
    assert "host 127.0.0.1" in message
    assert str(home) in message
    assert "held by another program" in message
    assert f"locked by pid {sleeper.pid}, which is not this server" in message
    assert sleeper.poll() is None  # never signalled

    rollback = await client.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    assert rollback.status_code == 200, rollback.text
    rolled_back = await wait_task(client, task["id"])
    assert rolled_back["status"] == "SUCCESSFUL"
    assert rolled_back["operation"] == "ROLLBACK"
    cluster_id = submitted["cluster"]["id"]
    assert (await client.get(f"/api/v2/ob/clusters/{cluster_id}")).status_code == 404
    async with any_database.transaction() as session:
        for model in (Cluster, Zone, Server):
            assert await session.scalar(select(func.count()).select_from(model)) == 0
    assert sleeper.poll() is None
    assert running.answers_sql()


async def test_what_cannot_be_taken_over_is_named(
    client: httpx.AsyncClient, pair: Fleet, tmp_path: Path
) -> None:
    running = pair.servers[0]
    host_id = await add_local_host(client)
    empty = tmp_path / "empty"
    empty.mkdir()

    _, task = await take_over_and_wait(
        client, body("nothing", [seekdb(host_id, running.port + 2, empty)])
    )
    assert "nothing to take over" in failed_check(task)

    # A wrong homePath for a running server: its port answers, but not from that home.
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    _, task = await take_over_and_wait(
        client, body("elsewhere", [seekdb(host_id, running.port, wrong)])
    )
    message = failed_check(task)
    assert f"port {running.port} is in use by pid" in message
    assert "homePath" in message


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


async def test_a_stale_pid_file_of_another_program_is_a_stopped_server(
    client: httpx.AsyncClient, tmp_path: Path, pair: Fleet, sleeper: subprocess.Popen[bytes]
) -> None:
    """An unlocked pid file naming a pid that now runs another program: nothing holds the
    home, so the server is stopped (and that program is left alone)."""
    home = tmp_path / "stale"
    (home / "run").mkdir(parents=True)
    (home / "store").mkdir()
    (home / "store" / "marker").write_text("data")
    (home / "run" / "seekdb.pid").write_text(str(sleeper.pid))
    host_id = await add_local_host(client)
    port = pair.servers[0].port + 3
    submitted, task = await take_over_and_wait(client, body("stale", [seekdb(host_id, port, home)]))
    assert task["status"] == "SUCCESSFUL", task
    view = await cluster_view(client, submitted["cluster"]["id"])
    assert view["status"] == "STOPPED"
    check = next(s for s in task["subtasks"] if s["name"] == "Check observer process")
    log = await client.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{check['id']}/log")
    assert f"pid {sleeper.pid} now belongs to another program" in log.json()["data"]["log"]
    assert sleeper.poll() is None


def _bad_requests(host_id: int, taken: FleetServer) -> list[tuple[str, Json, int, str]]:
    """(what, request, HTTP status, error code)"""
    port, home = taken.port, str(taken.home)
    ok_server = seekdb(host_id, port, home)
    return [
        ("unknown host", body("c", [seekdb(host_id + 999, port, home)]), 404, "CMP07005"),
        ("duplicate name", body("ob1", [ok_server]), 409, "COM10006"),
        (
            "duplicate zone names",
            {
                "name": "c",
                "obClusterId": 1,
                "zones": [
                    {"name": "z", "servers": [ok_server]},
                    {"name": "z", "servers": [seekdb(host_id, port + 1, home + "x")]},
                ],
            },
            400,
            "COM10001",
        ),
        (
            "same host and port twice",
            body("c", [ok_server], [seekdb(host_id, port, home + "-other")]),
            409,
            "COM10005",
        ),
        (
            "same home twice",
            body("c", [ok_server], [seekdb(host_id, port + 1, home)]),
            409,
            "COM10005",
        ),
        (
            "host and port of a registered server",
            body("c", [seekdb(host_id, 30000, "/srv/new")]),
            409,
            "COM10005",
        ),
        (
            "home of a registered server",
            body("c", [seekdb(host_id, port, "/tmp/ob1/30001")]),
            409,
            "COM10005",
        ),
        (
            "seekdb memory_budget below 1G",
            body("c", [seekdb(host_id, port, home, parameters={"memory_budget": "512M"})]),
            400,
            "COM10001",
        ),
        (
            "seekdb datafile_size=0",
            body("c", [seekdb(host_id, port, home, parameters={"datafile_size": "0"})]),
            400,
            "COM10001",
        ),
        (
            "seekdb memory_limit",
            body("c", [seekdb(host_id, port, home, parameters={"memory_limit": "2G"})]),
            400,
            "COM10001",
        ),
        (
            "unknown kind",
            body("c", [{**ok_server, "kind": "mysql"}]),
            400,
            "COM10001",
        ),
        (
            "no kind",
            body("c", [{k: v for k, v in ok_server.items() if k != "kind"}]),
            400,
            "COM10001",
        ),
        (
            "no home",
            body("c", [{k: v for k, v in ok_server.items() if k != "homePath"}]),
            400,
            "COM10001",
        ),
        ("relative home", body("c", [seekdb(host_id, port, "data/seekdb")]), 400, "COM10001"),
        (
            "homePath and baseDir differ",
            body("c", [seekdb(host_id, port, home, baseDir="/elsewhere")]),
            400,
            "COM10001",
        ),
        (
            "seekdb with an RPC port",
            body("c", [seekdb(host_id, port, home, rpcPort=2882)]),
            400,
            "COM10001",
        ),
        (
            "observer without an RPC port",
            body("c", [{**ok_server, "kind": "observer"}]),
            400,
            "COM10001",
        ),
        (
            "observer parameter that is a server field",
            body(
                "c",
                [
                    {
                        **ok_server,
                        "kind": "observer",
                        "rpcPort": 2882,
                        "parameters": {"mysql_port": "1"},
                    }
                ],
            ),
            400,
            "COM10001",
        ),
        ("no zones", {"name": "c", "obClusterId": 1, "zones": []}, 400, "COM10001"),
        ("a zone without servers", body("c", []), 400, "COM10001"),
        ("obClusterId 0", {**body("c", [ok_server]), "obClusterId": 0}, 400, "COM10001"),
        ("port 0", body("c", [seekdb(host_id, 0, home)]), 400, "COM10001"),
    ]


async def test_bad_requests_change_nothing(
    any_client: httpx.AsyncClient, any_database: Database, pair: Fleet
) -> None:
    client = any_client
    host_id = await add_local_host(client)
    async with any_database.transaction(write=True) as session:
        host = await session.get_one(Host, host_id)
        await add_cluster(session, host, name="ob1", zones=2, first_port=30000)
    before = await counts(any_database)
    wrong = {}
    for what, request, status, code in _bad_requests(host_id, pair.servers[0]):
        response = await client.post("/api/v2/ob/clusters/takeOver", json=request)
        answer = response.json()
        if (response.status_code, answer.get("error", {}).get("code")) != (status, code):
            wrong[what] = (response.status_code, answer)
        elif not answer["error"]["message"]:
            wrong[what] = "no message"
        if await counts(any_database) != before:
            wrong[what] = f"changed the metadb: {before} -> {await counts(any_database)}"
    assert wrong == {}
