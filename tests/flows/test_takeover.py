"""The takeover task's own steps, without a host: the version a server reports, and
rolling back a takeover, which forgets only a cluster this task still holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from obpilot.db.engine import Database
from obpilot.engine import Context, SubtaskError, SubtaskOperation
from obpilot.flows.common import FlowContext, FlowResources
from obpilot.flows.takeover import PrepareTakeOverCluster, version_number
from obpilot.hosts.access import HostAccess
from obpilot.inventory import service as inventory
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings
from tests.support.inventory import add_cluster, add_local_host, add_task


@pytest.mark.parametrize(
    ("reported", "version"),
    [
        ("5.7.25-OceanBase seekdb-v1.4.0.0", "1.4.0.0"),
        ("5.7.25-OceanBase_CE-v4.2.1.8", "4.2.1.8"),
        (" something else ", "something else"),
    ],
)
def test_the_version_number_in_what_a_server_reports(reported: str, version: str) -> None:
    assert version_number(reported) == version


def rollback_context(database: Database, home: Path, task_id: int, cluster_id: int) -> FlowContext:
    async def publish(key: str, value: str | list[str]) -> None:
        raise AssertionError("rolling back a takeover publishes nothing")

    return FlowContext(
        task_id=task_id,
        subtask_id=1,
        name=PrepareTakeOverCluster.name,
        run_time=1,
        operation=SubtaskOperation.ROLLBACK,
        executor="test",
        context=Context.of({"cluster_id": cluster_id}),
        parallel_key=None,
        database=database,
        resources=FlowResources(
            Settings(home=home), HostAccess(), SecretBox(Fernet.generate_key())
        ),
        _log=lambda line: None,
        _publish=publish,
    )


async def test_rolling_back_forgets_only_a_cluster_this_task_holds(
    database: Database, tmp_path: Path
) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
        ours, other = await add_task(session, cluster), await add_task(session, cluster)
        await inventory.take_operation_lock(session, cluster, other.id)
    with pytest.raises(SubtaskError, match=f"now held by task {other.id}"):
        await PrepareTakeOverCluster().rollback(
            rollback_context(database, tmp_path, ours.id, cluster.id)
        )

    context = rollback_context(database, tmp_path, other.id, cluster.id)
    await PrepareTakeOverCluster().rollback(context)
    async with database.transaction() as session:
        assert await inventory.find_cluster_row(session, cluster.id) is None
    await PrepareTakeOverCluster().rollback(context)  # already forgotten: nothing to do
