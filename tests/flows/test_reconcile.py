"""Status truth: drift between stored statuses and real processes is recorded, without
fighting a running operation."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from obpilot.db.engine import Database
from obpilot.engine import Context, Template, single, submit
from obpilot.flows.steps import PrepareStopCluster
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Cluster
from tests.support.fleet import Fleet
from tests.support.inventory import add_local_host
from tests.support.operations import cluster_view, server_statuses


async def test_a_server_that_died_becomes_unavailable_and_running_again(
    app: FastAPI, client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        cluster = await fleet.register(session, host)
    await fleet.driver(fleet.servers[0]).stop(force=True)  # dies behind obpilot's back

    view = await cluster_view(client, cluster.id)  # a read checks the processes
    assert server_statuses(view) == {"zone1": "UNAVAILABLE", "zone2": "RUNNING", "zone3": "RUNNING"}
    assert [z["status"] for z in view["zones"]] == ["UNAVAILABLE", "RUNNING", "RUNNING"]
    assert view["status"] == "RUNNING"

    await fleet.driver(fleet.servers[0]).start()
    drift = await app.state.reconciler.reconcile(cluster.id)
    assert [(d.stored, d.observed) for d in drift] == [("UNAVAILABLE", "RUNNING")]
    view = await cluster_view(client, cluster.id)
    assert set(server_statuses(view).values()) == {"RUNNING"}
    assert {z["status"] for z in view["zones"]} == {"RUNNING"}


async def test_a_cluster_under_a_running_operation_is_left_alone(
    app: FastAPI, client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    fleet = running_fleet
    await app.state.engine.stop()  # nothing runs the task below: it stays RUNNING
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        cluster = await fleet.register(session, host, name="busy")
        task = await submit(
            session,
            Template(key="test.hold", name="Hold", stages=[single(PrepareStopCluster)]),
            Context.of({"cluster_id": cluster.id, "former_cluster_status": "RUNNING"}),
            creator_id=None,
            creator_name="test",
            cluster_id=cluster.id,
        )
        await session.execute(
            update(Cluster).where(Cluster.id == cluster.id).values(operation_task_id=task.id)
        )
    await fleet.driver(fleet.servers[1]).stop(force=True)
    assert await app.state.reconciler.reconcile(cluster.id) == []
    async with database.transaction() as session:
        stored = await session.get_one(Cluster, cluster.id)
    assert stored.status == "RUNNING"


async def test_a_killed_server_is_unavailable_without_any_read(
    app: FastAPI, client: httpx.AsyncClient, database: Database, running_fleet: Fleet
) -> None:
    """The host's agent reports the exit of a server it identified; the reconciler checks
        that cluster at once (no GET, no periodic check: the next is 30 s away). The client
    is there only to start the app, as `serve` does."""
    fleet = running_fleet
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        cluster = await fleet.register(session, host, name="watched")
    assert await app.state.reconciler.reconcile(cluster.id) == []  # identifies and watches
    victim = (await fleet.status(fleet.servers[2])).pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)

    # Well under the periodic check (30 s): only the exit event can pass this in time.
    async with asyncio.timeout(10):  # bench/agent.py measures how fast it is
        while True:
            statuses = await _stored_statuses(database, cluster.id)
            if statuses == ["RUNNING", "RUNNING", "UNAVAILABLE"]:
                break
            await asyncio.sleep(0.05)


async def _stored_statuses(database: Database, cluster_id: int) -> list[str]:
    async with database.transaction() as session:
        servers = await inventory.servers_of_cluster(session, cluster_id)
    return [server.status for server in sorted(servers, key=lambda server: server.id)]
