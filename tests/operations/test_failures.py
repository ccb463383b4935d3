"""When a stop goes wrong: the task fails honestly, statuses stay true to the hosts, and
retry, skip and rollback work as OCP's task center defines them."""

from __future__ import annotations

import asyncio

import httpx

from obpilot.db.engine import Database
from obpilot.inventory.models import Host
from tests.operations.test_cluster_operations import register
from tests.support.fleet import Fleet, process_alive
from tests.support.operations import (
    cluster_view,
    server_statuses,
    task_of,
    wait_subtask,
    wait_task,
)
from tests.support.sshd import SshServer


async def start_stop_and_cancel_one(client: httpx.AsyncClient, cluster_id: int) -> tuple[int, int]:
    """Stops the cluster and cancels one "Stop observer process" while it runs."""
    response = await client.post(f"/api/v2/ob/clusters/{cluster_id}/stop")
    assert response.status_code == 200, response.text
    task_id = response.json()["data"]["id"]
    running = await wait_subtask(client, task_id, "Stop observer process", "RUNNING")
    cancel = await client.post(f"/api/v2/tasks/instances/{task_id}/subtasks/{running['id']}/cancel")
    assert cancel.status_code == 200, cancel.text
    task = await wait_task(client, task_id)
    assert task["status"] == "FAILED", task
    return task_id, running["id"]


async def wait_all_gone(fleet: Fleet) -> None:
    pids = [(await fleet.status(s)).pid for s in fleet.servers]
    async with asyncio.timeout(60):
        while True:
            if not any(pid is not None and process_alive(pid) for pid in pids):
                return
            await asyncio.sleep(0.2)


async def test_rollback_starts_again_what_the_stop_stopped(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    cluster = await register(database, fleet)
    task_id, cancelled = await start_stop_and_cancel_one(client, cluster.id)
    subtask = (await client.get(f"/api/v2/tasks/instances/{task_id}/subtasks/{cancelled}")).json()
    assert subtask["data"]["status"] == "FAILED"
    busy = await client.post(f"/api/v2/ob/clusters/{cluster.id}/start")
    assert busy.json()["error"]["code"] == "OBE11020"  # the failed task still holds the cluster
    await wait_all_gone(fleet)
    view = await cluster_view(client, cluster.id)  # statuses as the hosts report them
    assert set(server_statuses(view).values()) == {"STOPPED"}

    rollback = await client.post(f"/api/v2/tasks/instances/{task_id}/rollback")
    assert rollback.status_code == 200, rollback.text
    task = await wait_task(client, task_id)
    assert task["status"] == "SUCCESSFUL", task
    assert task["operation"] == "ROLLBACK"
    assert all(s.answers_sql() for s in fleet.servers)
    view = await cluster_view(client, cluster.id)
    assert view["status"] == "RUNNING"  # former_cluster_status
    assert set(server_statuses(view).values()) == {"RUNNING"}
    again = await client.post(f"/api/v2/ob/clusters/{cluster.id}/restart", json={"force": True})
    assert again.status_code == 200, again.text  # the lock is free again
    assert (await wait_task(client, again.json()["data"]["id"]))["status"] == "SUCCESSFUL"


async def test_retry_resumes_and_skip_moves_on(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    cluster = await register(database, fleet)
    task_id, cancelled = await start_stop_and_cancel_one(client, cluster.id)
    retry = await client.post(f"/api/v2/tasks/instances/{task_id}/retry")
    assert retry.status_code == 200, retry.text
    task = await wait_task(client, task_id)
    assert task["status"] == "SUCCESSFUL", task
    retried = next(s for s in task["subtasks"] if s["id"] == cancelled)
    assert retried["runTime"] == 2
    assert (await cluster_view(client, cluster.id))["status"] == "STOPPED"

    start = await client.post(f"/api/v2/ob/clusters/{cluster.id}/start")
    assert (await wait_task(client, start.json()["data"]["id"]))["status"] == "SUCCESSFUL"
    task_id, cancelled = await start_stop_and_cancel_one(client, cluster.id)
    await wait_all_gone(fleet)
    skip = await client.post(f"/api/v2/tasks/instances/{task_id}/subtasks/{cancelled}/skip")
    assert skip.status_code == 200, skip.text
    task = await wait_task(client, task_id)
    assert task["status"] == "SUCCESSFUL", task
    assert (await cluster_view(client, cluster.id))["status"] == "STOPPED"
    wrong = await client.post(f"/api/v2/tasks/instances/{task_id}/retry")
    assert wrong.json()["error"]["code"] == "TSK10007"


async def test_unreachable_host_fails_the_stop_and_a_retry_after_repair_succeeds(
    client: httpx.AsyncClient, database: Database, running_fleet: Fleet, sshd: SshServer
) -> None:
    fleet = running_fleet
    credential = await client.post(
        "/api/v2/profiles/me/credentials",
        json={
            "name": "sshd-key",
            "sshCredentialProperty": {
                "type": "PRIVATE_KEY",
                "username": sshd.username,
                "privateKey": sshd.client_key,
            },
        },
    )
    assert credential.status_code == 200, credential.text
    host = await client.post(
        "/api/v2/compute/hosts",
        json={
            "name": "remote",
            "innerIpAddress": "127.0.0.1",
            "sshPort": sshd.port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential.json()["data"]["id"],
        },
    )
    assert host.status_code == 200, host.text
    async with database.transaction() as session:
        remote = await session.get_one(Host, host.json()["data"]["id"])
        cluster = await fleet.register(session, remote, name="over-ssh")

    response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/stop", json={"force": True})
    task_id = response.json()["data"]["id"]
    await wait_subtask(client, task_id, "Prepare stop OB zone", "SUCCESSFUL")
    sshd.cut_off()
    try:
        task = await wait_task(client, task_id)
        assert task["status"] == "FAILED", task
        failed = [s for s in task["subtasks"] if s["status"] == "FAILED"]
        assert failed
        log = (
            await client.get(f"/api/v2/tasks/instances/{task_id}/subtasks/{failed[0]['id']}/log")
        ).json()["data"]["log"]
        assert f"127.0.0.1:{sshd.port}" in log, log
        assert "unreachable" in log.lower() or "refused" in log.lower(), log
    finally:
        sshd.start()  # the repair: the same host is back
    retry = await client.post(f"/api/v2/tasks/instances/{task_id}/retry")
    assert retry.status_code == 200, retry.text
    task = await wait_task(client, task_id)
    assert task["status"] == "SUCCESSFUL", task
    assert not any(s.answers_sql() for s in fleet.servers)
    assert (await task_of(client, task_id))["status"] == "SUCCESSFUL"
    assert (await cluster_view(client, cluster.id))["status"] == "STOPPED"
