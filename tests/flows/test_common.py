"""What the operations' subtasks share: a server's status as its process shows it, and
finding a stored server's process."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from obpilot.db.engine import Database
from obpilot.engine import SubtaskError
from obpilot.flows.common import FlowResources, observed_status, server_driver
from obpilot.hosts.access import HostAccess
from obpilot.hosts.drivers import ProcessState, ProcessStatus
from obpilot.hosts.local import LocalExecutor
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings
from tests.support.inventory import add_cluster, add_local_host


@pytest.mark.parametrize(
    ("state", "stored", "observed"),
    [
        (ProcessState.RUNNING, "UNAVAILABLE", "RUNNING"),
        (ProcessState.STOPPED, "STOPPING", "STOPPED"),
        (ProcessState.STOPPED, "STOPPED", "STOPPED"),
        # Nobody stopped it: it died.
        (ProcessState.STOPPED, "RUNNING", "UNAVAILABLE"),
        (ProcessState.STARTING, "RUNNING", "UNAVAILABLE"),
        (ProcessState.CONFLICT, "RUNNING", "UNAVAILABLE"),
    ],
)
def test_a_server_is_as_its_process(state: ProcessState, stored: str, observed: str) -> None:
    process = ProcessStatus(state=state, home="/data/s1", sql_port=2881)
    assert observed_status(process, stored) == observed


async def test_a_stored_servers_driver_reaches_its_host(database: Database, tmp_path: Path) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1, name="c1")
    server = cluster.zones[0].servers[0]
    resources = FlowResources(
        Settings(home=tmp_path), HostAccess(), SecretBox(Fernet.generate_key())
    )
    try:
        driver, found = await server_driver(database, resources, server.id)
        assert (found.id, driver.spec.home_path, driver.spec.cluster_name) == (
            server.id,
            "/tmp/c1/30000",
            "c1",
        )
        assert isinstance(driver.executor, LocalExecutor)
        with pytest.raises(SubtaskError, match="OB server 999 is no longer registered"):
            await server_driver(database, resources, 999)
    finally:
        await resources.host_access.close()
