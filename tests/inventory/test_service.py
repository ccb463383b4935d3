"""The inventory's rules applied to a metadb: hosts, clusters, the operation lock and the
statuses that operations and the reconciler record."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.engine import Database
from obpilot.engine import TaskInstance, TaskStatus
from obpilot.errors import (
    ClusterBusy,
    ClusterNotFound,
    DuplicateName,
    HostAlreadyExists,
    HostInUse,
    HostNotFound,
    ZoneNotFound,
)
from obpilot.hosts.drivers import ProcessSpec
from obpilot.inventory import service
from obpilot.inventory.models import Cluster, Zone
from obpilot.inventory.repository import ClusterRepository
from obpilot.inventory.schemas import ClusterSpec, HostCreate
from obpilot.paging import PageRequest, Sort
from obpilot.secretbox import SecretBox
from tests.support.inventory import add_cluster, add_local_host, add_task

SECRET_KEY = b"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

PAGE = PageRequest(page=1, size=20, sort=())


class TestRegisterCluster:
    async def test_records_cluster_zones_and_servers(self, any_database: Database) -> None:
        async with any_database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await add_cluster(session, host, zones=3, servers_per_zone=2)
        async with any_database.transaction() as session:
            loaded = await service.get_cluster(session, cluster_id=cluster.id)
        assert [zone.name for zone in loaded.zones] == ["zone1", "zone2", "zone3"]
        assert [len(zone.servers) for zone in loaded.zones] == [2, 2, 2]
        assert {s.ip for z in loaded.zones for s in z.servers} == {"127.0.0.1"}
        assert loaded.create_time.tzinfo is not None

    async def test_duplicate_name_is_refused_and_changes_nothing(
        self, any_database: Database
    ) -> None:
        async with any_database.transaction(write=True) as session:
            host = await add_local_host(session)
            await add_cluster(session, host, name="dup")
        with pytest.raises(DuplicateName):
            async with any_database.transaction(write=True) as session:
                await add_cluster(session, host, name="dup", first_port=31000)
        async with any_database.transaction() as session:
            _clusters, total = await service.list_clusters(
                session, page=PAGE, name=None, statuses=[]
            )
        assert total == 1

    async def test_unknown_host_rolls_back_the_whole_cluster(self, database: Database) -> None:
        spec = ClusterSpec.model_validate(
            {
                "name": "ghost",
                "obClusterId": 1,
                "status": "RUNNING",
                "zones": [
                    {
                        "name": "zone1",
                        "status": "RUNNING",
                        "servers": [
                            {"hostId": 999, "sqlPort": 2881, "homePath": "/x", "status": "RUNNING"}
                        ],
                    }
                ],
            }
        )
        with pytest.raises(HostNotFound):
            async with database.transaction(write=True) as session:
                await service.register_cluster(session, spec=spec)
        async with database.transaction() as session:
            _, total = await service.list_clusters(session, page=PAGE, name=None, statuses=[])
        assert total == 0


class TestListClusters:
    async def test_filters_sorts_and_pages(self, any_database: Database) -> None:
        async with any_database.transaction(write=True) as session:
            host = await add_local_host(session)
            for index, name in enumerate(["alpha", "Beta", "gamma"]):
                await add_cluster(
                    session,
                    host,
                    name=name,
                    zones=1,
                    first_port=40000 + index * 10,
                    status="STOPPED" if name == "gamma" else "RUNNING",
                )
        async with any_database.transaction() as session:
            by_name, total = await service.list_clusters(
                session, page=PAGE, name="BET", statuses=[]
            )
            assert (total, [c.name for c in by_name]) == (1, ["Beta"])
            stopped, _ = await service.list_clusters(
                session, page=PAGE, name=None, statuses=["STOPPED"]
            )
            assert [c.name for c in stopped] == ["gamma"]
            page2 = PageRequest(page=2, size=2, sort=(Sort("id", descending=True),))
            second, total = await service.list_clusters(session, page=page2, name=None, statuses=[])
            assert total == 3
            assert [c.name for c in second] == ["alpha"]

    async def test_name_keyword_is_literal(self, database: Database) -> None:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            await add_cluster(session, host, name="a_b", zones=1)
            await add_cluster(session, host, name="axb", zones=1, first_port=31000)
        async with database.transaction() as session:
            found, _ = await service.list_clusters(session, page=PAGE, name="a_b", statuses=[])
        assert [c.name for c in found] == ["a_b"]


class TestHosts:
    async def test_host_with_servers_cannot_be_deleted(self, database: Database) -> None:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            await add_cluster(session, host, zones=1)
        with pytest.raises(HostInUse):
            async with database.transaction() as session:
                await service.delete_host(session, host_id=host.id)

    async def test_unknown_zone(self, database: Database) -> None:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await add_cluster(session, host, zones=1)
        with pytest.raises(ZoneNotFound):
            async with database.transaction() as session:
                await service.get_zone(session, cluster_id=cluster.id, zone_name="zoneX")

    async def test_a_new_host_is_checked_and_recorded_with_its_key(
        self, database: Database
    ) -> None:
        spec = HostCreate(name="db1", inner_ip_address="10.0.0.7", credential_id=None)
        async with database.transaction(write=True) as session:
            assert await service.check_new_host(session, spec) == "db1"
            host = await service.create_host(session, spec=spec, host_key="ssh-ed25519 AAAA")
            assert host.host_key == "ssh-ed25519 AAAA"
            with pytest.raises(HostAlreadyExists):
                await service.check_new_host(session, spec)
            with pytest.raises(DuplicateName):
                await service.create_host(
                    session, spec=spec.model_copy(update={"ssh_port": 2222}), host_key=None
                )


class TestOperationLock:
    async def test_a_cluster_is_busy_until_its_lock_holder_succeeds(
        self, database: Database
    ) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=1)
            task = await add_task(session, cluster)
            await service.take_operation_lock(session, cluster, task.id)
        for status in (TaskStatus.RUNNING, TaskStatus.FAILED):
            async with database.transaction(write=True) as session:
                await set_task_status(session, task.id, status)
                with pytest.raises(ClusterBusy, match=f"task {task.id} .* is {status}"):
                    await service.idle_cluster(session, cluster.id)
        async with database.transaction(write=True) as session:
            await set_task_status(session, task.id, TaskStatus.SUCCESSFUL)
            idle = await service.idle_cluster(session, cluster.id)
        assert [zone.name for zone in idle.zones] == ["zone1"]  # loaded with its zones
        with pytest.raises(ClusterNotFound):
            async with database.transaction() as session:
                await service.idle_cluster(session, 999)

    async def test_a_lock_taken_meanwhile_names_its_holder(self, database: Database) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=1)
            ours, theirs = await add_task(session, cluster), await add_task(session, cluster)
        async with database.transaction(write=True) as session:
            seen = await service.idle_cluster(session, cluster.id)
            # Another request's conditional UPDATE, between our read and our write.
            await ClusterRepository(session).take_lock(cluster.id, held_by=None, task_id=theirs.id)
            with pytest.raises(ClusterBusy, match=f"task {theirs.id} "):
                await service.take_operation_lock(session, seen, ours.id)

    async def test_a_finished_task_frees_the_lock_only_once_it_succeeded(
        self, database: Database
    ) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=1)
            task = await add_task(session, cluster)
            await service.take_operation_lock(session, cluster, task.id)
        for status, holder in ((TaskStatus.FAILED, task.id), (TaskStatus.SUCCESSFUL, None)):
            async with database.transaction(write=True) as session:
                await service.release_operation_lock(
                    session, cluster_id=cluster.id, task_id=task.id, task_status=status
                )
                row = await service.find_cluster_row(session, cluster.id)
            assert row is not None
            assert row.operation_task_id == holder

    async def test_only_a_running_holder_writes_the_statuses(self, database: Database) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=1)
            assert not await service.operation_running(session, cluster)
            task = await add_task(session, cluster)
            await service.take_operation_lock(session, cluster, task.id)
            await session.refresh(cluster)
            assert await service.operation_running(session, cluster)
            await set_task_status(session, task.id, TaskStatus.FAILED)
            assert not await service.operation_running(session, cluster)


async def set_task_status(session: AsyncSession, task_id: int, status: TaskStatus) -> None:
    (await session.get_one(TaskInstance, task_id)).status = status
    await session.flush()


class TestStatuses:
    async def test_zone_and_cluster_are_recorded_as_their_servers_make_them(
        self, database: Database
    ) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=2)
            servers = {s.id: s for s in await service.servers_of_cluster(session, cluster.id)}
            first = min(servers)
        async with database.transaction(write=True) as session:
            await service.set_server_status(session, first, "STOPPED")
            assert (
                await service.update_zone_status(session, cluster_id=cluster.id, zone_name="zone1")
                == "STOPPED"
            )
            assert await service.update_cluster_status(session, cluster.id) == "RUNNING"
            assert (
                await service.update_zone_status(session, cluster_id=cluster.id, zone_name="zoneX")
                is None
            )
        assert await statuses(database, cluster.id) == (
            {"zone1": "STOPPED", "zone2": "RUNNING"},
            "RUNNING",
        )

    async def test_the_reconcilers_record_derives_every_zone_and_the_cluster(
        self, database: Database
    ) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=2)
            ids = sorted(s.id for s in await service.servers_of_cluster(session, cluster.id))
        async with database.transaction(write=True) as session:
            await service.record_server_statuses(
                session, cluster.id, {ids[0]: "UNAVAILABLE", ids[1]: "STOPPED"}
            )
        assert await statuses(database, cluster.id) == (
            {"zone1": "UNAVAILABLE", "zone2": "STOPPED"},
            "UNAVAILABLE",
        )

    async def test_the_cluster_version_is_what_most_servers_report(
        self, database: Database
    ) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=3)
            ids = sorted(s.id for s in await service.servers_of_cluster(session, cluster.id))
        async with database.transaction(write=True) as session:
            assert await service.update_cluster_version(session, cluster.id) is None
            for server_id, version in zip(ids, ["4.2.1", "4.2.1", "4.2.2"], strict=True):
                await service.set_found_server_status(session, server_id, "RUNNING", version)
            assert await service.update_cluster_version(session, cluster.id) == "4.2.1"
            row = await service.find_cluster_row(session, cluster.id)
        assert row is not None
        assert row.ob_version == "4.2.1"

    async def test_a_stored_server_becomes_a_process_spec(self, database: Database) -> None:
        box = SecretBox(SECRET_KEY)
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await add_cluster(session, host, zones=1, name="c1")
            cluster.root_password_encrypted = box.encrypt("r00t")
            server = cluster.zones[0].servers[0]
            server.binary_path = "/opt/seekdb"
            server.parameters = {"memory_budget": "2G"}
        async with database.transaction() as session:
            stored = await service.find_server(session, server.id)
            assert stored is not None
            spec = await service.server_process_spec(session, stored, secret_box=box)
        assert spec == ProcessSpec(
            kind="seekdb",
            sql_port=30000,
            home_path="/tmp/c1/30000",
            binary_path="/opt/seekdb",
            parameters={"memory_budget": "2G"},
            zone_name="zone1",
            cluster_name="c1",
            ob_cluster_id=100,
            server_ip="127.0.0.1",
            sql_password="r00t",
        )
        assert "r00t" not in repr(spec)


class TestForget:
    async def test_forgetting_removes_the_rows_and_frees_the_name(self, database: Database) -> None:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await add_cluster(session, host, zones=2)
        async with database.transaction(write=True) as session:
            await service.forget_cluster(session, cluster.id)
            await service.ensure_cluster_name_free(session, cluster.name)
            assert await service.find_cluster_row(session, cluster.id) is None
            assert await service.servers_of_cluster(session, cluster.id) == []
            await service.delete_host(session, host_id=host.id)  # no server left on it


async def statuses(database: Database, cluster_id: int) -> tuple[dict[str, str], str]:
    """The zones' statuses by name, and the cluster's."""
    async with database.transaction() as session:
        zones = await session.scalars(select(Zone).where(Zone.cluster_id == cluster_id))
        cluster = await session.get_one(Cluster, cluster_id)
        return {zone.name: zone.status for zone in zones}, cluster.status
