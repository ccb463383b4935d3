"""The rules of inventory states: which statuses each operation may start from, when a
cluster is busy, and how zone and cluster statuses follow from their servers. Pure: no
SQL, no I/O; `inventory.service` applies them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from obpilot.engine import TaskStatus
from obpilot.inventory.models import (
    Cluster,
    ClusterStatus,
    Server,
    ServerStatus,
    Zone,
    ZoneStatus,
)

C, Z, S = ClusterStatus, ZoneStatus, ServerStatus


class Operation(StrEnum):
    """An operation on a cluster, a zone or a server (the last word of its path)."""

    STOP = "stop"
    START = "start"
    RESTART = "restart"


#: The statuses each operation may start from.
CLUSTER_OPERATION_FROM: dict[Operation, frozenset[str]] = {
    Operation.STOP: frozenset({C.RUNNING, C.UNAVAILABLE}),
    Operation.START: frozenset({C.STOPPED, C.UNAVAILABLE}),
    Operation.RESTART: frozenset({C.RUNNING, C.UNAVAILABLE}),
}
ZONE_OPERATION_FROM: dict[Operation, frozenset[str]] = {
    Operation.STOP: frozenset({Z.RUNNING, Z.UNAVAILABLE}),
    Operation.START: frozenset({Z.STOPPED, Z.UNAVAILABLE}),
    Operation.RESTART: frozenset({Z.RUNNING, Z.UNAVAILABLE}),
}
SERVER_OPERATION_FROM: dict[Operation, frozenset[str]] = {
    Operation.STOP: frozenset({S.RUNNING, S.UNAVAILABLE}),
    Operation.START: frozenset({S.STOPPED, S.UNAVAILABLE}),
    Operation.RESTART: frozenset({S.RUNNING, S.UNAVAILABLE}),
}
#: A zone is stopped or restarted only in a cluster that is not stopped as a whole.
CLUSTER_FOR_ZONE_OPERATION: frozenset[str] = frozenset({C.RUNNING, C.UNAVAILABLE})


def zone_operation_needs_running_cluster(operation: Operation) -> bool:
    """Starting a zone is how a partly stopped cluster comes back, so it is always allowed."""
    return operation != Operation.START


def stop_leaves_a_zone_running(cluster: Cluster, zone: Zone) -> bool:
    """Stopping the last running zone is stopping the cluster: that has its own operation."""
    return any(other.status == Z.RUNNING for other in cluster.zones if other.id != zone.id)


def stop_leaves_a_server_running(cluster: Cluster, server: Server) -> bool:
    return any(
        other.status == S.RUNNING and other.id != server.id
        for zone in cluster.zones
        for other in zone.servers
    )


# ------------------------------------------------------------------ the operation lock


def keeps_cluster_busy(holder_status: str) -> bool:
    """The busy rule: the task holding a cluster's operation lock keeps every other
    operation off the cluster until it has SUCCEEDED. A FAILED holder keeps it too: the
    cluster stays reserved for that task's retry, skip or rollback. A holder that no
    longer keeps the cluster busy gives the lock up when it ends."""
    return holder_status != TaskStatus.SUCCESSFUL


def writes_cluster_statuses(holder_status: str) -> bool:
    """Whether the lock holder is acting on the cluster now. Only a RUNNING holder writes
    the statuses of the cluster, its zones and servers; the reconciler leaves such a
    cluster alone. A FAILED holder writes nothing until the operator acts, so meanwhile
    the reconciler records what the hosts report: the operator chooses retry, skip or
    rollback from the servers' real statuses."""
    return holder_status == TaskStatus.RUNNING


# ------------------------------------------------------------------ derived statuses


def zone_status_from(server_statuses: Iterable[str]) -> ZoneStatus:
    """STOPPED when all its servers are, RUNNING when any runs, otherwise UNAVAILABLE."""
    statuses = list(server_statuses)
    if statuses and all(status == S.STOPPED for status in statuses):
        return Z.STOPPED
    if any(status == S.RUNNING for status in statuses):
        return Z.RUNNING
    return Z.UNAVAILABLE


def cluster_status_from(zone_statuses: Iterable[str]) -> ClusterStatus:
    """STOPPED when all its zones are, RUNNING when any runs, otherwise UNAVAILABLE."""
    statuses = list(zone_statuses)
    if statuses and all(status == Z.STOPPED for status in statuses):
        return C.STOPPED
    if any(status == Z.RUNNING for status in statuses):
        return C.RUNNING
    return C.UNAVAILABLE


def cluster_version_from(server_versions: Iterable[str | None]) -> str | None:
    """The version most of its servers report; None when none reports one."""
    versions = Counter(version for version in server_versions if version)
    return versions.most_common(1)[0][0] if versions else None
