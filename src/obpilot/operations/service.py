"""The rules of cluster, zone and server operations: which states allow which operation,
the cluster's operation lock, and the task each operation becomes.

The lock and the task are written in one transaction: the cluster row is locked (FOR
UPDATE; SQLite serialises writers), its holder checked, the task inserted, and the lock
taken with a conditional UPDATE whose row count is checked. Two concurrent requests
therefore give one task and one 409 that names it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from obpilot.engine import Context, TaskInstance, TaskStatus, Template, submit
from obpilot.errors import (
    ClusterBusy,
    ClusterNotFound,
    ClusterStateConflict,
    LastServerStop,
    ServerNotFound,
    ServerStateConflict,
    ZoneNotFound,
    ZoneStateConflict,
)
from obpilot.flows import templates
from obpilot.inventory.models import (
    Cluster,
    ClusterStatus,
    Server,
    ServerStatus,
    Zone,
    ZoneStatus,
)
from obpilot.operations.schemas import RestartOptions, StopOptions

C, Z, S = ClusterStatus, ZoneStatus, ServerStatus

STOPPABLE_CLUSTER = {C.RUNNING, C.UNAVAILABLE}
STARTABLE_CLUSTER = {C.STOPPED, C.UNAVAILABLE}
RESTARTABLE_CLUSTER = {C.RUNNING, C.UNAVAILABLE}
# Zone and server operations need a cluster that is not stopped as a whole.
CLUSTER_FOR_PART = {C.RUNNING, C.UNAVAILABLE}


@dataclass(frozen=True)
class Caller:
    id: int | None
    name: str


async def locked_cluster(session: AsyncSession, cluster_id: int) -> Cluster:
    """The cluster (zones and servers loaded), row-locked, and free of unfinished tasks
    (otherwise ClusterBusy, OBE11020)."""
    cluster = await session.scalar(
        select(Cluster)
        .where(Cluster.id == cluster_id)
        .options(selectinload(Cluster.zones).selectinload(Zone.servers))
        .with_for_update(of=Cluster)
    )
    if cluster is None:
        raise ClusterNotFound(cluster_id)
    await _ensure_idle(session, cluster)
    return cluster


async def _ensure_idle(session: AsyncSession, cluster: Cluster) -> None:
    if cluster.operation_task_id is None:
        return
    holder = await session.get(TaskInstance, cluster.operation_task_id)
    if holder is not None and holder.status != TaskStatus.SUCCESSFUL:
        raise ClusterBusy(cluster.name, holder.id, holder.name, holder.status)


def _check(cluster: Cluster, allowed: Iterable[str], operation: str) -> None:
    if cluster.status not in allowed:
        raise ClusterStateConflict(cluster.name, cluster.status, operation)


async def submit_locked(
    session: AsyncSession,
    cluster: Cluster,
    template: Template,
    strings: dict[str, str],
    lists: dict[str, list[str]],
    caller: Caller,
) -> TaskInstance:
    """Submits `template` for `cluster` and takes its operation lock, in the caller's
    transaction (the cluster is idle: see `locked_cluster`)."""
    context = Context.of(
        {"cluster_name": cluster.name, "cluster_id": str(cluster.id), **strings}, lists
    )
    task = await submit(
        session,
        template,
        context,
        creator_id=caller.id,
        creator_name=caller.name,
        cluster_id=cluster.id,
        cluster_name=cluster.name,
        ob_cluster_id=cluster.ob_cluster_id,
    )
    taken = await session.execute(
        update(Cluster)
        .where(
            Cluster.id == cluster.id,
            Cluster.operation_task_id.is_(None)
            if cluster.operation_task_id is None
            else Cluster.operation_task_id == cluster.operation_task_id,
        )
        .values(operation_task_id=task.id)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        # Another request took the lock between our read and our write.
        await session.refresh(cluster)
        await _ensure_idle(session, cluster)
        raise ClusterBusy(cluster.name, -1, "another operation", "RUNNING")
    return task


def _options(options: StopOptions | None) -> dict[str, str]:
    strings: dict[str, str] = {}
    if options is not None and options.force:
        strings["force"] = "true"
    if options is not None and options.freeze_before_stop:
        strings["freeze_before_stop"] = "true"
    return strings


def _all(cluster: Cluster) -> dict[str, list[str]]:
    return {
        "server_ids": [str(s.id) for zone in cluster.zones for s in zone.servers],
        "zone_names": [zone.name for zone in cluster.zones],
    }


# ------------------------------------------------------------------ cluster


async def stop_cluster(
    session: AsyncSession, *, cluster_id: int, options: StopOptions | None, caller: Caller
) -> TaskInstance:
    cluster = await locked_cluster(session, cluster_id)
    _check(cluster, STOPPABLE_CLUSTER, "stop")
    strings = {"former_cluster_status": cluster.status, **_options(options)}
    return await submit_locked(
        session, cluster, templates.STOP_CLUSTER, strings, _all(cluster), caller
    )


async def start_cluster(session: AsyncSession, *, cluster_id: int, caller: Caller) -> TaskInstance:
    cluster = await locked_cluster(session, cluster_id)
    _check(cluster, STARTABLE_CLUSTER, "start")
    strings = {"former_cluster_status": cluster.status}
    return await submit_locked(
        session, cluster, templates.START_CLUSTER, strings, _all(cluster), caller
    )


async def restart_cluster(
    session: AsyncSession, *, cluster_id: int, options: RestartOptions | None, caller: Caller
) -> TaskInstance:
    cluster = await locked_cluster(session, cluster_id)
    _check(cluster, RESTARTABLE_CLUSTER, "restart")
    strings = {"former_cluster_status": cluster.status, **_options(options)}
    lists = _all(cluster)
    if len(cluster.zones) < templates.ROLLING_RESTART_MIN_ZONES:
        template = templates.RESTART_CLUSTER_AT_ONCE
    else:
        template = templates.rolling_restart(len(cluster.zones))
        strings["rolling"] = "true"
        for index, zone in enumerate(cluster.zones):
            lists[templates.rolling_zone_key(index)] = [zone.name]
            lists[templates.rolling_servers_key(index)] = [str(s.id) for s in zone.servers]
    return await submit_locked(session, cluster, template, strings, lists, caller)


# ------------------------------------------------------------------ zone and server


class Action(StrEnum):
    STOP = "stop"
    START = "start"
    RESTART = "restart"


@dataclass(frozen=True)
class PartRule:
    """What an operation on one zone or one server runs, and from which states."""

    template: Template
    allowed: frozenset[str]


ZONE_RULES = {
    Action.STOP: PartRule(templates.STOP_ZONE, frozenset({Z.RUNNING, Z.UNAVAILABLE})),
    Action.START: PartRule(templates.START_ZONE, frozenset({Z.STOPPED, Z.UNAVAILABLE})),
    Action.RESTART: PartRule(templates.RESTART_ZONE, frozenset({Z.RUNNING, Z.UNAVAILABLE})),
}
SERVER_RULES = {
    Action.STOP: PartRule(templates.STOP_SERVER, frozenset({S.RUNNING, S.UNAVAILABLE})),
    Action.START: PartRule(templates.START_SERVER, frozenset({S.STOPPED, S.UNAVAILABLE})),
    Action.RESTART: PartRule(templates.RESTART_SERVER, frozenset({S.RUNNING, S.UNAVAILABLE})),
}


def _zone(cluster: Cluster, zone_name: str) -> Zone:
    for zone in cluster.zones:
        if zone.name == zone_name:
            return zone
    raise ZoneNotFound(cluster.id, zone_name)


async def zone_operation(
    session: AsyncSession,
    *,
    action: Action,
    cluster_id: int,
    zone_name: str,
    options: StopOptions | None,
    caller: Caller,
) -> TaskInstance:
    rule = ZONE_RULES[action]
    cluster = await locked_cluster(session, cluster_id)
    zone = _zone(cluster, zone_name)
    if zone.status not in rule.allowed:
        raise ZoneStateConflict(zone.name, zone.status, action)
    if action != Action.START:
        _check(cluster, CLUSTER_FOR_PART, f"{action} zone")
    others_running = [z for z in cluster.zones if z.status == Z.RUNNING and z.id != zone.id]
    if action == Action.STOP and not others_running:
        raise ZoneStateConflict(
            zone.name, zone.status, "stop of the last running zone; stop the cluster instead"
        )
    strings = {"zone_name": zone.name, "former_cluster_status": cluster.status, **_options(options)}
    lists = {"server_ids": [str(s.id) for s in zone.servers], "zone_names": [zone.name]}
    return await submit_locked(session, cluster, rule.template, strings, lists, caller)


def _server(cluster: Cluster, server_id: int) -> tuple[Zone, Server]:
    for zone in cluster.zones:
        for server in zone.servers:
            if server.id == server_id:
                return zone, server
    raise ServerNotFound(server_id)


async def server_operation(
    session: AsyncSession,
    *,
    action: Action,
    cluster_id: int,
    server_id: int,
    options: StopOptions | None,
    caller: Caller,
) -> TaskInstance:
    rule = SERVER_RULES[action]
    cluster = await locked_cluster(session, cluster_id)
    zone, server = _server(cluster, server_id)
    label = f"{server.ip}:{server.sql_port}"
    if server.status not in rule.allowed:
        raise ServerStateConflict(label, server.status, action)
    others_running = [
        s for z in cluster.zones for s in z.servers if s.status == S.RUNNING and s.id != server.id
    ]
    if action == Action.STOP and not others_running:
        raise LastServerStop(label, cluster.name)
    strings = {
        "server_id": str(server.id),
        "zone_name": zone.name,
        "former_cluster_status": cluster.status,
        **_options(options),
    }
    lists = {"server_ids": [str(server.id)], "zone_names": [zone.name]}
    return await submit_locked(session, cluster, rule.template, strings, lists, caller)
