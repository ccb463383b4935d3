"""The templates of cluster, zone and server operations. For a cluster of one zone with
one server, "Stop OB cluster" is exactly OCP's eleven-subtask DAG (the seed document)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine import Stage, Subtask, TaskInstance, TaskStatus, Template, parallel, single
from obpilot.flows.steps import (
    PrepareRestartCluster,
    PrepareRestartObserver,
    PrepareRestartZone,
    PrepareStartCluster,
    PrepareStartObserver,
    PrepareStartZone,
    PrepareStopCluster,
    PrepareStopObserver,
    PrepareStopZone,
    RestartStartObserverProcess,
    RestartStopObserverProcess,
    StartObserverProcess,
    StopObserverProcess,
    UpdateClusterStatus,
    UpdateRunningClusterStatus,
    UpdateRunningObserverStatus,
    UpdateRunningZoneStatus,
    UpdateStoppedClusterStatus,
    UpdateStoppedObserverStatus,
    UpdateStoppedZoneStatus,
    UpdateZoneStatus,
)
from obpilot.inventory.models import Cluster

#: A cluster with at least this many zones restarts zone by zone (OCP's rule).
ROLLING_RESTART_MIN_ZONES = 3


async def release_cluster_lock(session: AsyncSession, task: TaskInstance) -> None:
    """A finished task frees its cluster for the next operation. A FAILED task keeps the
    lock: the cluster stays reserved until the task is retried, skipped or rolled back."""
    if task.status == TaskStatus.SUCCESSFUL and task.cluster_id is not None:
        await session.execute(
            update(Cluster)
            .where(Cluster.id == task.cluster_id, Cluster.operation_task_id == task.id)
            .values(operation_task_id=None)
        )


def _template(key: str, name: str, stages: Sequence[Stage]) -> Template:
    return Template(key=key, name=name, stages=stages, on_end=release_cluster_lock)


STOP_CLUSTER = _template(
    "ob.cluster.stop",
    "Stop OB cluster",
    [
        single(PrepareStopCluster),
        parallel(PrepareStopZone, over="zone_names"),
        parallel(PrepareStopObserver, over="server_ids"),
        parallel(StopObserverProcess, over="server_ids"),
        parallel(UpdateStoppedObserverStatus, over="server_ids"),
        parallel(UpdateStoppedZoneStatus, over="zone_names"),
        single(UpdateStoppedClusterStatus),
    ],
)

START_CLUSTER = _template(
    "ob.cluster.start",
    "Start OB cluster",
    [
        single(PrepareStartCluster),
        parallel(PrepareStartZone, over="zone_names"),
        parallel(PrepareStartObserver, over="server_ids"),
        parallel(StartObserverProcess, over="server_ids"),
        parallel(UpdateRunningObserverStatus, over="server_ids"),
        parallel(UpdateRunningZoneStatus, over="zone_names"),
        single(UpdateRunningClusterStatus),
    ],
)

RESTART_CLUSTER_AT_ONCE = _template(
    "ob.cluster.restart",
    "Restart OB cluster",
    [
        single(PrepareRestartCluster),
        parallel(PrepareRestartZone, over="zone_names"),
        parallel(PrepareRestartObserver, over="server_ids"),
        parallel(RestartStopObserverProcess, over="server_ids"),
        parallel(RestartStartObserverProcess, over="server_ids"),
        parallel(UpdateRunningObserverStatus, over="server_ids"),
        parallel(UpdateRunningZoneStatus, over="zone_names"),
        single(UpdateRunningClusterStatus),
    ],
)


def rolling_zone_key(index: int) -> str:
    """listMap key holding the one zone of the `index`-th restart round."""
    return f"restart_zone_{index}"


def rolling_servers_key(index: int) -> str:
    return f"restart_zone_{index}.server_ids"


def rolling_restart(zone_count: int) -> Template:
    """Zone after zone: a zone's servers are stopped, started and answering SQL (verified
    by "Update observer status") before the next zone stops."""
    stages: list[Stage] = [single(PrepareRestartCluster)]
    for index in range(zone_count):
        zone, servers = rolling_zone_key(index), rolling_servers_key(index)
        stages += [
            parallel(PrepareRestartZone, over=zone),
            parallel(PrepareRestartObserver, over=servers),
            parallel(RestartStopObserverProcess, over=servers),
            parallel(RestartStartObserverProcess, over=servers),
            parallel(UpdateRunningObserverStatus, over=servers),
            parallel(UpdateRunningZoneStatus, over=zone),
        ]
    stages.append(single(UpdateRunningClusterStatus))
    return _template(f"ob.cluster.restart.rolling.{zone_count}", "Restart OB cluster", stages)


def _zone_template(
    key: str,
    name: str,
    prepare_zone: type[Subtask],
    steps: Sequence[Stage],
    update_zone: type[Subtask],
) -> Template:
    return _template(
        key,
        name,
        [single(prepare_zone), *steps, single(update_zone), single(UpdateClusterStatus)],
    )


STOP_ZONE = _zone_template(
    "ob.zone.stop",
    "Stop OB zone",
    PrepareStopZone,
    [
        parallel(PrepareStopObserver, over="server_ids"),
        parallel(StopObserverProcess, over="server_ids"),
        parallel(UpdateStoppedObserverStatus, over="server_ids"),
    ],
    UpdateStoppedZoneStatus,
)

START_ZONE = _zone_template(
    "ob.zone.start",
    "Start OB zone",
    PrepareStartZone,
    [
        parallel(PrepareStartObserver, over="server_ids"),
        parallel(StartObserverProcess, over="server_ids"),
        parallel(UpdateRunningObserverStatus, over="server_ids"),
    ],
    UpdateRunningZoneStatus,
)

RESTART_ZONE = _zone_template(
    "ob.zone.restart",
    "Restart OB zone",
    PrepareRestartZone,
    [
        parallel(PrepareRestartObserver, over="server_ids"),
        parallel(RestartStopObserverProcess, over="server_ids"),
        parallel(RestartStartObserverProcess, over="server_ids"),
        parallel(UpdateRunningObserverStatus, over="server_ids"),
    ],
    UpdateRunningZoneStatus,
)


def _server_template(key: str, name: str, steps: Sequence[type[Subtask]]) -> Template:
    stages = [single(step) for step in steps]
    return _template(key, name, [*stages, single(UpdateZoneStatus), single(UpdateClusterStatus)])


STOP_SERVER = _server_template(
    "ob.server.stop",
    "Stop OB server",
    [PrepareStopObserver, StopObserverProcess, UpdateStoppedObserverStatus],
)
START_SERVER = _server_template(
    "ob.server.start",
    "Start OB server",
    [PrepareStartObserver, StartObserverProcess, UpdateRunningObserverStatus],
)
RESTART_SERVER = _server_template(
    "ob.server.restart",
    "Restart OB server",
    [
        PrepareRestartObserver,
        RestartStopObserverProcess,
        RestartStartObserverProcess,
        UpdateRunningObserverStatus,
    ],
)
