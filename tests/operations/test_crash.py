"""A crash of obpilot loses nothing: SIGKILL the server during "Stop observer process",
start it again, and the task completes with nothing half-done. It is started again on
another port, so under another instance name, and its leases run for 300 s: only the
killed process's absence from this machine lets the new instance resume at once."""

from __future__ import annotations

from pathlib import Path

import httpx

from obpilot.db.engine import Database
from obpilot.inventory.models import Cluster
from tests.support.fleet import Fleet, process_alive
from tests.support.inventory import add_local_host
from tests.support.operations import cluster_view, server_statuses, wait_subtask, wait_task
from tests.support.server import ADMIN_PASSWORD, ServerProcess

LONG_LEASES = {
    "OBPILOT_ENGINE_LEASE_SECONDS": "300",
    "OBPILOT_ENGINE_HEARTBEAT_SECONDS": "10",
    "OBPILOT_ENGINE_POLL_SECONDS": "0.5",
}


async def test_sigkill_during_stop_then_restart_completes_the_task(
    tmp_path: Path, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    home = tmp_path / "home"
    first = ServerProcess(home, env=LONG_LEASES).start()
    database = Database(f"sqlite+aiosqlite:///{home / 'obpilot.db'}")
    try:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster: Cluster = await fleet.register(session, host, name="crashy")
        async with httpx.AsyncClient(
            base_url=first.base_url, auth=("admin", ADMIN_PASSWORD), timeout=30
        ) as client:
            response = await client.post(f"/api/v2/ob/clusters/{cluster.id}/stop")
            assert response.status_code == 200, response.text
            task_id = response.json()["data"]["id"]
            await wait_subtask(client, task_id, "Stop observer process", "RUNNING")
        killed = first.process.pid  # type: ignore[union-attr]
        first.kill()

        second = ServerProcess(home, env=LONG_LEASES).start()
        assert second.port != first.port
        try:
            async with httpx.AsyncClient(
                base_url=second.base_url, auth=("admin", ADMIN_PASSWORD), timeout=30
            ) as client:
                task = await wait_task(client, task_id, within=120)  # the leases: 300 s
                assert task["status"] == "SUCCESSFUL", task
                stops = [s for s in task["subtasks"] if s["name"] == "Stop observer process"]
                assert len(stops) == 3
                assert all(s["status"] == "SUCCESSFUL" for s in stops)
                # What the killed instance held was resumed by the new one, at once.
                resumed = [s for s in stops if s["executor"] == f"127.0.0.1:{second.port}"]
                assert resumed, stops
                log = await client.get(
                    f"/api/v2/tasks/instances/{task_id}/subtasks/{resumed[0]['id']}/log"
                )
                assert (
                    f"executor 127.0.0.1:{first.port} lost: its process (pid {killed}) on this "
                    "machine ended"
                ) in log.text
                view = await cluster_view(client, cluster.id)
                assert view["status"] == "STOPPED"
                assert set(server_statuses(view).values()) == {"STOPPED"}
                again = await client.post(f"/api/v2/ob/clusters/{cluster.id}/start")
                assert again.status_code == 200, again.text  # the lock was released
                assert (await wait_task(client, again.json()["data"]["id"]))[
                    "status"
                ] == "SUCCESSFUL"
        finally:
            second.stop()
        for server in fleet.servers:
            status = await fleet.status(server)
            assert status.pid is not None
            assert process_alive(status.pid)
    finally:
        first.stop()
        await database.dispose()
