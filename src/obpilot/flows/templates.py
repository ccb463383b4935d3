"""The templates of cluster, zone and server operations. For a cluster of one zone with
one server, "Stop OB cluster" is exactly OCP's eleven-subtask DAG (the seed document).

Each template names its hand-offs: the outputs (`steps.ServerOutput`) that a step
publishes for a later step of the same task. The verified status, for one:
"Stop observer process" and "Start observer process" publish `VERIFIED_STATUS`, the status
they verified on the host, and "Update observer status" records it instead of looking
again; the prepare steps of a stop hand on the process they identified
(`IDENTIFIED_PROCESS`), which the stop signals without a second look. A template whose
stages do not hand on what they take fails at import."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine import (
    Stage,
    Subtask,
    TaskInstance,
    Template,
    TemplateFamily,
    parallel,
    single,
)
from obpilot.flows.steps import (
    IDENTIFIED_PROCESS,
    STARTED_BY_TASK,
    STOPPED_BY_TASK,
    VERIFIED_STATUS,
    FlowStep,
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
    ServerOutput,
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
from obpilot.inventory import service as inventory

#: A cluster with at least this many zones restarts zone by zone (OCP's rule).
ROLLING_RESTART_MIN_ZONES = 3


async def release_cluster_lock(session: AsyncSession, task: TaskInstance) -> None:
    """A finished task frees its cluster for the next operation unless it still keeps it
    busy (`inventory.state.keeps_cluster_busy`)."""
    if task.cluster_id is not None:
        await inventory.release_operation_lock(
            session, cluster_id=task.cluster_id, task_id=task.id, task_status=task.status
        )


def check_hand_offs(key: str, stages: Sequence[Stage], hand_offs: Sequence[ServerOutput]) -> None:
    """Every output a stage takes is one of `hand_offs` and published by an earlier stage;
    every one of `hand_offs` is taken by some stage."""
    published: set[ServerOutput] = set()
    taken: set[ServerOutput] = set()
    for stage in stages:
        step = stage.subtask
        if not issubclass(step, FlowStep):
            raise TypeError(f"template {key!r}: {step.__qualname__} is not a FlowStep")
        for output in step.takes:
            if output not in hand_offs or output not in published:
                raise ValueError(
                    f"template {key!r}: {step.name!r} takes {output.name!r}, which no earlier "
                    "stage hands on"
                )
            taken.add(output)
        published.update(step.publishes)
    unused = [output.name for output in hand_offs if output not in taken]
    if unused:
        raise ValueError(f"template {key!r}: no stage takes {unused}")


def cluster_template(
    key: str, name: str, stages: Sequence[Stage], hand_offs: Sequence[ServerOutput]
) -> Template:
    """A template of an operation on one cluster, whose task holds the cluster's lock."""
    check_hand_offs(key, stages, hand_offs)
    return Template(key=key, name=name, stages=stages, on_end=release_cluster_lock)


STOP_CLUSTER = cluster_template(
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
    hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
)

START_CLUSTER = cluster_template(
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
    hand_offs=[STARTED_BY_TASK, VERIFIED_STATUS],
)

RESTART_CLUSTER_AT_ONCE = cluster_template(
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
    hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
)


def rolling_zone_key(index: int) -> str:
    """listMap key holding the one zone of the `index`-th restart round."""
    return f"restart_zone_{index}"


def rolling_servers_key(index: int) -> str:
    return f"restart_zone_{index}.server_ids"


ROLLING_RESTART_KEY_PREFIX = "ob.cluster.restart.rolling."


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
    return cluster_template(
        f"{ROLLING_RESTART_KEY_PREFIX}{zone_count}",
        "Restart OB cluster",
        stages,
        hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
    )


#: A cluster's zone count is not bounded beforehand: its rolling restart is built on
#: demand, for the submit and for the catalog's lookup of its end hook alike.
ROLLING_RESTART = TemplateFamily(ROLLING_RESTART_KEY_PREFIX, rolling_restart)


def _zone_template(
    key: str,
    name: str,
    prepare_zone: type[Subtask],
    steps: Sequence[Stage],
    update_zone: type[Subtask],
    hand_offs: Sequence[ServerOutput],
) -> Template:
    return cluster_template(
        key,
        name,
        [single(prepare_zone), *steps, single(update_zone), single(UpdateClusterStatus)],
        hand_offs,
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
    hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
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
    hand_offs=[STARTED_BY_TASK, VERIFIED_STATUS],
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
    hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
)


def _server_template(
    key: str, name: str, steps: Sequence[type[Subtask]], hand_offs: Sequence[ServerOutput]
) -> Template:
    stages = [single(step) for step in steps]
    return cluster_template(
        key, name, [*stages, single(UpdateZoneStatus), single(UpdateClusterStatus)], hand_offs
    )


STOP_SERVER = _server_template(
    "ob.server.stop",
    "Stop OB server",
    [PrepareStopObserver, StopObserverProcess, UpdateStoppedObserverStatus],
    hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
)
START_SERVER = _server_template(
    "ob.server.start",
    "Start OB server",
    [PrepareStartObserver, StartObserverProcess, UpdateRunningObserverStatus],
    hand_offs=[STARTED_BY_TASK, VERIFIED_STATUS],
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
    hand_offs=[STOPPED_BY_TASK, IDENTIFIED_PROCESS, VERIFIED_STATUS],
)

TEMPLATES: tuple[Template | TemplateFamily, ...] = (
    STOP_CLUSTER,
    START_CLUSTER,
    RESTART_CLUSTER_AT_ONCE,
    ROLLING_RESTART,
    STOP_ZONE,
    START_ZONE,
    RESTART_ZONE,
    STOP_SERVER,
    START_SERVER,
    RESTART_SERVER,
)
