"""The inventory's state rules, pure: no metadb, no host."""

from __future__ import annotations

import pytest

from obpilot.engine import TaskStatus
from obpilot.inventory.models import Cluster, Server, Zone
from obpilot.inventory.state import (
    CLUSTER_FOR_ZONE_OPERATION,
    CLUSTER_OPERATION_FROM,
    SERVER_OPERATION_FROM,
    ZONE_OPERATION_FROM,
    Operation,
    cluster_status_from,
    cluster_version_from,
    keeps_cluster_busy,
    stop_leaves_a_server_running,
    stop_leaves_a_zone_running,
    writes_cluster_statuses,
    zone_operation_needs_running_cluster,
    zone_status_from,
)

STOP, START, RESTART = Operation.STOP, Operation.START, Operation.RESTART


def cluster_of(*zones: list[str]) -> Cluster:
    """A cluster (not stored) with one zone per argument, holding servers of those
    statuses; a zone's status is what its servers make it."""
    server_ids = iter(range(1, 1000))
    return Cluster(
        id=1,
        name="c1",
        zones=[
            Zone(
                id=index,
                name=f"zone{index}",
                status=zone_status_from(statuses),
                servers=[Server(id=next(server_ids), status=s) for s in statuses],
            )
            for index, statuses in enumerate(zones, start=1)
        ],
    )


@pytest.mark.parametrize(
    "sources", [CLUSTER_OPERATION_FROM, ZONE_OPERATION_FROM, SERVER_OPERATION_FROM]
)
def test_which_operations_each_status_allows(sources: dict[Operation, frozenset[str]]) -> None:
    statuses = ("RUNNING", "UNAVAILABLE", "STOPPED", "STOPPING", "STARTING", "RESTARTING")
    allowed = {
        status: {op for op, froms in sources.items() if status in froms} for status in statuses
    }
    assert allowed == {
        "RUNNING": {STOP, RESTART},
        "UNAVAILABLE": {STOP, START, RESTART},
        "STOPPED": {START},
        "STOPPING": set(),
        "STARTING": set(),
        "RESTARTING": set(),
    }


def test_a_zone_is_stopped_or_restarted_only_in_a_cluster_not_stopped() -> None:
    assert [zone_operation_needs_running_cluster(op) for op in (STOP, START, RESTART)] == [
        True,
        False,
        True,
    ]
    assert {"RUNNING", "UNAVAILABLE"} == CLUSTER_FOR_ZONE_OPERATION


def test_a_stop_must_leave_a_zone_running() -> None:
    cluster = cluster_of(["RUNNING"], ["RUNNING"], ["STOPPED"])
    assert all(stop_leaves_a_zone_running(cluster, zone) for zone in cluster.zones)
    cluster = cluster_of(["RUNNING"], ["STOPPED"])
    assert not stop_leaves_a_zone_running(cluster, cluster.zones[0])


def test_a_stop_must_leave_a_server_running() -> None:
    cluster = cluster_of(["RUNNING", "STOPPED"], ["UNAVAILABLE"])
    running, stopped = cluster.zones[0].servers
    assert not stop_leaves_a_server_running(cluster, running)
    assert stop_leaves_a_server_running(cluster, stopped)
    cluster = cluster_of(["RUNNING"], ["RUNNING"])
    assert stop_leaves_a_server_running(cluster, cluster.zones[0].servers[0])


@pytest.mark.parametrize(
    ("holder", "busy", "writing"),
    [
        (TaskStatus.RUNNING, True, True),
        # Reserved for its retry, skip or rollback; meanwhile the reconciler records truth.
        (TaskStatus.FAILED, True, False),
        (TaskStatus.SUCCESSFUL, False, False),
    ],
)
def test_the_lock_holder_keeps_the_cluster_busy_until_it_succeeds(
    holder: TaskStatus, busy: bool, writing: bool
) -> None:
    assert keeps_cluster_busy(holder) is busy
    assert writes_cluster_statuses(holder) is writing


@pytest.mark.parametrize(
    ("servers", "zone"),
    [
        (["STOPPED", "STOPPED"], "STOPPED"),
        (["STOPPED", "RUNNING"], "RUNNING"),
        (["UNAVAILABLE", "RUNNING"], "RUNNING"),
        (["UNAVAILABLE", "STOPPED"], "UNAVAILABLE"),
        (["STOPPING"], "UNAVAILABLE"),
        ([], "UNAVAILABLE"),
    ],
)
def test_a_zone_is_as_its_servers(servers: list[str], zone: str) -> None:
    assert zone_status_from(servers) == zone


@pytest.mark.parametrize(
    ("zones", "cluster"),
    [
        (["STOPPED", "STOPPED"], "STOPPED"),
        (["STOPPED", "RUNNING"], "RUNNING"),
        (["UNAVAILABLE", "STOPPED"], "UNAVAILABLE"),
        ([], "UNAVAILABLE"),
    ],
)
def test_a_cluster_is_as_its_zones(zones: list[str], cluster: str) -> None:
    assert cluster_status_from(zones) == cluster


def test_a_clusters_version_is_what_most_servers_report() -> None:
    assert cluster_version_from(["4.2.1", None, "4.2.2", "4.2.1"]) == "4.2.1"
    assert cluster_version_from([None, ""]) is None
