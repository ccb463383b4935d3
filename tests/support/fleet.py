"""Real seekdb servers for operation tests, driven by obpilot's own seekdb driver on this
machine. A session shares them; each test registers them as a cluster of its own and
finds them running (`ensure_running`); the session's end stops them by pid."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pymysql
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.hosts.drivers import ProcessSpec, ProcessStatus, SeekdbDriver
from obpilot.hosts.local import LocalExecutor
from obpilot.inventory import service
from obpilot.inventory.models import Cluster, Host
from obpilot.inventory.schemas import ClusterSpec
from tests.support.databases import free_port


@dataclass(frozen=True)
class FleetServer:
    home: Path
    port: int

    def spec(self) -> ProcessSpec:
        return ProcessSpec(kind="seekdb", sql_port=self.port, home_path=str(self.home))

    def connect(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=3
        )

    def answers_sql(self) -> bool:
        try:
            connection = self.connect()
        except pymysql.MySQLError:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except pymysql.MySQLError:
            return False
        finally:
            connection.close()


class Fleet:
    def __init__(self, root: Path, count: int) -> None:
        self.executor = LocalExecutor()
        self.servers = [FleetServer(root / f"seekdb{i}", free_port()) for i in range(count)]

    def driver(self, server: FleetServer) -> SeekdbDriver:
        return SeekdbDriver(server.spec(), self.executor)

    async def status(self, server: FleetServer) -> ProcessStatus:
        return await self.driver(server).status()

    async def ensure_running(self) -> None:
        await asyncio.gather(*(self.driver(s).start() for s in self.servers))

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.driver(s).stop(force=True) for s in self.servers))
        await self.executor.close()

    async def register(
        self,
        session: AsyncSession,
        host: Host,
        *,
        name: str = "ob1",
        servers: list[FleetServer] | None = None,
        zones: int | None = None,
    ) -> Cluster:
        """A RUNNING cluster whose zone i holds the fleet's server i (or `zones` zones
        sharing the chosen servers round-robin)."""
        chosen = servers or self.servers
        zone_count = zones or len(chosen)
        zone_specs = [
            {
                "name": f"zone{i + 1}",
                "status": "RUNNING",
                "servers": [
                    {
                        "hostId": host.id,
                        "kind": "seekdb",
                        "sqlPort": server.port,
                        "homePath": str(server.home),
                        "status": "RUNNING",
                    }
                    for server in chosen[i::zone_count]
                ],
            }
            for i in range(zone_count)
        ]
        spec = ClusterSpec.model_validate(
            {"name": name, "obClusterId": 1, "status": "RUNNING", "zones": zone_specs}
        )
        return await service.register_cluster(session, spec=spec)


def process_alive(pid: int) -> bool:
    """A zombie (exited, waiting for its parent to reap it) does not count as alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
