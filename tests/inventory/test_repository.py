"""The inventory's SQL on a SQLite metadb: the cluster operation lock first (its one
conditional UPDATE), then the queries other domains ask the inventory for."""

from __future__ import annotations

from cryptography.fernet import Fernet

from obpilot.credentials.schemas import CredentialCreate
from obpilot.credentials.service import add_host, create_credential
from obpilot.db.engine import Database
from obpilot.iam.permissions import PermissionSet, Principal
from obpilot.inventory.models import Cluster, HostKind, Server
from obpilot.inventory.repository import (
    ClusterRepository,
    HostRepository,
    ServerRepository,
    ZoneRepository,
)
from obpilot.inventory.schemas import HostCreate
from obpilot.secretbox import SecretBox
from tests.support.inventory import add_cluster, add_local_host, add_task


async def lock_of(database: Database, cluster_id: int) -> int | None:
    async with database.transaction() as session:
        return (await session.get_one(Cluster, cluster_id)).operation_task_id


async def test_the_lock_is_taken_only_from_the_holder_the_taker_saw(database: Database) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
        first, second = await add_task(session, cluster), await add_task(session, cluster)
        clusters = ClusterRepository(session)
        assert await clusters.take_lock(cluster.id, held_by=None, task_id=first.id)
        # A second taker that also saw the lock free loses: the row count says so.
        assert not await clusters.take_lock(cluster.id, held_by=None, task_id=second.id)
        assert not await clusters.take_lock(cluster.id, held_by=second.id, task_id=second.id)
        assert await clusters.take_lock(cluster.id, held_by=first.id, task_id=second.id)
    assert await lock_of(database, cluster.id) == second.id


async def test_the_lock_is_released_only_by_its_holder(database: Database) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
        holder, other = await add_task(session, cluster), await add_task(session, cluster)
        await ClusterRepository(session).take_lock(cluster.id, held_by=None, task_id=holder.id)
    async with database.transaction(write=True) as session:
        await ClusterRepository(session).release_lock(cluster.id, other.id)
    assert await lock_of(database, cluster.id) == holder.id
    async with database.transaction(write=True) as session:
        await ClusterRepository(session).release_lock(cluster.id, holder.id)
    assert await lock_of(database, cluster.id) is None


async def test_the_lock_holder_is_the_task_row(database: Database) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
        clusters = ClusterRepository(session)
        assert await clusters.lock_holder(cluster) is None
        task = await add_task(session, cluster)
        await clusters.take_lock(cluster.id, held_by=None, task_id=task.id)
        locked = await clusters.get_locked(cluster.id)
        assert locked is not None
        await session.refresh(locked)
        holder = await clusters.lock_holder(locked)
    assert holder is not None
    assert (holder.id, holder.name) == (task.id, "Hold the cluster")


async def test_forgetting_deletes_the_cluster_its_zones_and_servers(database: Database) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        gone = await add_cluster(session, host, name="gone", zones=2)
        kept = await add_cluster(session, host, name="kept", zones=1, first_port=31000)
    async with database.transaction(write=True) as session:
        await ClusterRepository(session).forget(gone.id)
    async with database.transaction() as session:
        clusters = ClusterRepository(session)
        assert await clusters.ids() == [kept.id]
        assert await ZoneRepository(session).of_cluster(gone.id) == []
        assert await ServerRepository(session).of_cluster(gone.id) == []
        assert len(await HostRepository(session).servers_on([host.id])) == 1


async def test_servers_using_a_port_or_home_on_a_host(database: Database) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        other_host = await add_local_host(session, "other", address="::1")
        cluster = await add_cluster(session, host, zones=2)
        servers = ServerRepository(session)
        first, second = await servers.of_cluster(cluster.id)

        async def ids(host_id: int, ports: list[int], homes: list[str]) -> set[int]:
            found: list[Server] = await servers.using(host_id, ports, homes)
            return {server.id for server in found}

        assert await ids(host.id, [first.sql_port], []) == {first.id}
        assert await ids(host.id, [], [second.home_path]) == {second.id}
        assert await ids(host.id, [1], ["/elsewhere"]) == set()
        assert await ids(other_host.id, [first.sql_port], [second.home_path]) == set()


async def test_statuses_written_and_read_back(database: Database) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=2)
        servers = ServerRepository(session)
        first = (await servers.of_cluster(cluster.id))[0]
        await servers.set_status(first.id, "STOPPED", version="1.0")
        await ZoneRepository(session).set_status(cluster.id, "zone2", "STOPPING")
        await ClusterRepository(session).set_status(cluster.id, "UNAVAILABLE")
        await ClusterRepository(session).set_version(cluster.id, "1.0")
    async with database.transaction() as session:
        zone1 = await ZoneRepository(session).get_by_name(cluster.id, "zone1")
        assert zone1 is not None
        assert await ServerRepository(session).statuses_in_zone(zone1.id) == ["STOPPED"]
        assert await ServerRepository(session).versions(cluster.id) == ["1.0", None]
        assert await ZoneRepository(session).statuses(cluster.id) == ["RUNNING", "STOPPING"]
        row = await ClusterRepository(session).get_row(cluster.id)
    assert row is not None
    assert (row.status, row.ob_version) == ("UNAVAILABLE", "1.0")


async def test_hosts_found_by_ids_and_by_credential(database: Database) -> None:
    async with database.transaction(write=True) as session:
        credential = await create_credential(
            session,
            spec=CredentialCreate.model_validate(
                {
                    "name": "ops",
                    "sshCredentialProperty": {"type": "PASSWORD", "username": "u", "password": "p"},
                }
            ),
            secret_box=SecretBox(Fernet.generate_key()),
            owner=Principal(id=1, username="admin", permissions=PermissionSet.parse(["**"])),
        )
        first = await add_local_host(session, "first")
        second = await add_host(
            session,
            spec=HostCreate(
                name="second",
                inner_ip_address="::1",
                kind=HostKind.LOCAL,
                credential_id=credential.id,
            ),
        )
        hosts = HostRepository(session)
        assert set(await hosts.by_ids([first.id, second.id, 999])) == {first.id, second.id}
        assert await hosts.names_using_credential(credential.id) == ["second"]
