"""The rules of cluster, zone and server operations on a SQLite metadb: which states allow
which operation, the task each becomes, and the lock it takes. Nothing runs the tasks."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.engine import Database
from obpilot.engine import Context, TaskInstance
from obpilot.errors import (
    ClusterBusy,
    ClusterStateConflict,
    LastServerStop,
    ServerNotFound,
    ServerStateConflict,
    ZoneNotFound,
    ZoneStateConflict,
)
from obpilot.inventory.models import Cluster, Server, Zone
from obpilot.inventory.state import Operation
from obpilot.operations import service
from obpilot.operations.schemas import RestartOptions, StopOptions
from obpilot.operations.service import Caller
from tests.support.inventory import add_cluster, add_local_host

CALLER = Caller(id=None, name="test", instance="test-node:8080")


async def a_cluster(database: Database, zones: int = 3, servers_per_zone: int = 1) -> Cluster:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        return await add_cluster(session, host, zones=zones, servers_per_zone=servers_per_zone)


async def set_statuses(
    session: AsyncSession,
    cluster: Cluster,
    *,
    cluster_status: str | None = None,
    zones: dict[str, str] | None = None,
    servers: dict[int, str] | None = None,
) -> None:
    if cluster_status is not None:
        await session.execute(
            update(Cluster).where(Cluster.id == cluster.id).values(status=cluster_status)
        )
    for name, status in (zones or {}).items():
        await session.execute(
            update(Zone)
            .where(Zone.cluster_id == cluster.id, Zone.name == name)
            .values(status=status)
        )
    for server_id, status in (servers or {}).items():
        await session.execute(update(Server).where(Server.id == server_id).values(status=status))


def context_of(task: TaskInstance) -> Context:
    return Context.load(task.context)


def server_ids(cluster: Cluster) -> list[int]:
    return [server.id for zone in cluster.zones for server in zone.servers]


async def test_a_stop_becomes_a_task_holding_the_cluster(database: Database) -> None:
    cluster = await a_cluster(database)
    async with database.transaction(write=True) as session:
        task = (
            await service.stop_cluster(
                session,
                cluster_id=cluster.id,
                options=StopOptions(force=True, freeze_before_stop=True),
                caller=CALLER,
            )
        ).task
    assert (task.name, task.template, task.cluster_id, task.executor) == (
        "Stop OB cluster",
        "ob.cluster.stop",
        cluster.id,
        "test-node:8080",  # the instance that accepted the request
    )
    context = context_of(task)
    assert context.string_map == {
        "cluster_name": "ob1",
        "cluster_id": str(cluster.id),
        "former_cluster_status": "RUNNING",
        "force": "true",
        "freeze_before_stop": "true",
    }
    assert context.list_map == {
        "server_ids": [str(i) for i in server_ids(cluster)],
        "zone_names": ["zone1", "zone2", "zone3"],
    }
    async with database.transaction() as session:
        assert (await session.get_one(Cluster, cluster.id)).operation_task_id == task.id
    with pytest.raises(ClusterBusy, match=f"task {task.id} \\(Stop OB cluster\\) is RUNNING"):
        await operate_cluster(database, Operation.START, cluster.id)


async def operate_cluster(
    database: Database, operation: Operation, cluster_id: int
) -> TaskInstance:
    async with database.transaction(write=True) as session:
        if operation == Operation.START:
            return (await service.start_cluster(session, cluster_id=cluster_id, caller=CALLER)).task
        if operation == Operation.STOP:
            return (
                await service.stop_cluster(
                    session, cluster_id=cluster_id, options=None, caller=CALLER
                )
            ).task
        return (
            await service.restart_cluster(
                session, cluster_id=cluster_id, options=None, caller=CALLER
            )
        ).task


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        ("RUNNING", Operation.START),
        ("STOPPED", Operation.STOP),
        ("STOPPED", Operation.RESTART),
        ("STOPPING", Operation.START),
    ],
)
async def test_a_cluster_state_refuses_what_it_does_not_allow(
    database: Database, status: str, refused: Operation
) -> None:
    cluster = await a_cluster(database)
    async with database.transaction(write=True) as session:
        await set_statuses(session, cluster, cluster_status=status)
    with pytest.raises(ClusterStateConflict, match=f"\\[{status}\\] .*: {refused}$"):
        await operate_cluster(database, refused, cluster.id)


@pytest.mark.parametrize(("zones", "rolling"), [(2, False), (3, True)])
async def test_a_restart_goes_zone_by_zone_from_three_zones(
    database: Database, zones: int, rolling: bool
) -> None:
    cluster = await a_cluster(database, zones=zones)
    async with database.transaction(write=True) as session:
        task = (
            await service.restart_cluster(
                session, cluster_id=cluster.id, options=RestartOptions(force=True), caller=CALLER
            )
        ).task
    context = context_of(task)
    assert task.template == (
        f"ob.cluster.restart.rolling.{zones}" if rolling else "ob.cluster.restart"
    )
    assert context.string_map.get("rolling") == ("true" if rolling else None)
    assert context.string_map["force"] == "true"
    if rolling:
        assert context.list_map["restart_zone_1"] == ["zone2"]
        assert context.list_map["restart_zone_1.server_ids"] == [str(server_ids(cluster)[1])]


async def test_a_zone_operation_is_about_that_zone(database: Database) -> None:
    cluster = await a_cluster(database, servers_per_zone=2)
    async with database.transaction(write=True) as session:
        task = (
            await service.zone_operation(
                session,
                operation=Operation.STOP,
                cluster_id=cluster.id,
                zone_name="zone2",
                options=StopOptions(force=True),
                caller=CALLER,
            )
        ).task
    context = context_of(task)
    assert (task.name, context.string_map["zone_name"]) == ("Stop OB zone", "zone2")
    assert context.string_map["force"] == "true"
    assert context.list_map == {
        "server_ids": [str(s.id) for s in cluster.zones[1].servers],
        "zone_names": ["zone2"],
    }


async def test_zone_operations_refused_by_the_states(database: Database) -> None:
    cluster = await a_cluster(database, zones=2)

    async def zone(operation: Operation, name: str) -> TaskInstance:
        async with database.transaction(write=True) as session:
            return (
                await service.zone_operation(
                    session,
                    operation=operation,
                    cluster_id=cluster.id,
                    zone_name=name,
                    options=None,
                    caller=CALLER,
                )
            ).task

    with pytest.raises(ZoneNotFound):
        await zone(Operation.STOP, "zone9")
    with pytest.raises(ZoneStateConflict, match=r"\[RUNNING\] does not support: start"):
        await zone(Operation.START, "zone1")
    async with database.transaction(write=True) as session:
        await set_statuses(session, cluster, zones={"zone2": "STOPPED"})
    with pytest.raises(ZoneStateConflict, match="last running zone"):
        await zone(Operation.STOP, "zone1")
    async with database.transaction(write=True) as session:
        await set_statuses(session, cluster, cluster_status="STOPPED")
    with pytest.raises(ClusterStateConflict, match="restart zone"):
        await zone(Operation.RESTART, "zone1")
    # Starting a zone is how a partly stopped cluster comes back: its status does not matter.
    assert (await zone(Operation.START, "zone2")).name == "Start OB zone"


async def test_server_operations_refused_by_the_states(database: Database) -> None:
    cluster = await a_cluster(database, zones=1, servers_per_zone=2)
    first, second = server_ids(cluster)

    async def server(operation: Operation, server_id: int) -> TaskInstance:
        async with database.transaction(write=True) as session:
            return (
                await service.server_operation(
                    session,
                    operation=operation,
                    cluster_id=cluster.id,
                    server_id=server_id,
                    options=None,
                    caller=CALLER,
                )
            ).task

    with pytest.raises(ServerNotFound):
        await server(Operation.STOP, 999)
    with pytest.raises(ServerStateConflict, match=r"\[RUNNING\] does not support: start"):
        await server(Operation.START, first)
    async with database.transaction(write=True) as session:
        await set_statuses(session, cluster, servers={second: "STOPPED"})
    with pytest.raises(LastServerStop):
        await server(Operation.STOP, first)
    task = await server(Operation.RESTART, first)
    context = context_of(task)
    assert (task.name, context.string_map["server_id"]) == ("Restart OB server", str(first))
    assert context.list_map == {"server_ids": [str(first)], "zone_names": ["zone1"]}
