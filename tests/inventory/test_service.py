from __future__ import annotations

import pytest

from obpilot.api.pagination import PageRequest, Sort
from obpilot.db.engine import Database
from obpilot.errors import DuplicateName, HostInUse, HostNotFound, ZoneNotFound
from obpilot.inventory import service
from obpilot.inventory.schemas import ClusterSpec
from tests.support.inventory import add_cluster, add_local_host

PAGE = PageRequest(page=1, size=20, sort=())


class TestRegisterCluster:
    async def test_records_cluster_zones_and_servers(self, any_database: Database) -> None:
        async with any_database.transaction() as session:
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
        async with any_database.transaction() as session:
            host = await add_local_host(session)
            await add_cluster(session, host, name="dup")
        with pytest.raises(DuplicateName):
            async with any_database.transaction() as session:
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
            async with database.transaction() as session:
                await service.register_cluster(session, spec=spec)
        async with database.transaction() as session:
            _, total = await service.list_clusters(session, page=PAGE, name=None, statuses=[])
        assert total == 0


class TestListClusters:
    async def test_filters_sorts_and_pages(self, any_database: Database) -> None:
        async with any_database.transaction() as session:
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
        async with database.transaction() as session:
            host = await add_local_host(session)
            await add_cluster(session, host, name="a_b", zones=1)
            await add_cluster(session, host, name="axb", zones=1, first_port=31000)
        async with database.transaction() as session:
            found, _ = await service.list_clusters(session, page=PAGE, name="a_b", statuses=[])
        assert [c.name for c in found] == ["a_b"]


class TestHosts:
    async def test_host_with_servers_cannot_be_deleted(self, database: Database) -> None:
        async with database.transaction() as session:
            host = await add_local_host(session)
            await add_cluster(session, host, zones=1)
        with pytest.raises(HostInUse):
            async with database.transaction() as session:
                await service.delete_host(session, host_id=host.id)

    async def test_unknown_zone(self, database: Database) -> None:
        async with database.transaction() as session:
            host = await add_local_host(session)
            cluster = await add_cluster(session, host, zones=1)
        with pytest.raises(ZoneNotFound):
            async with database.transaction() as session:
                await service.get_zone(session, cluster_id=cluster.id, zone_name="zoneX")
