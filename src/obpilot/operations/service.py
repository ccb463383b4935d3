"""Cluster, zone and server operations: which operation the inventory's states allow, and
the task each operation becomes, submitted in the transaction that takes the cluster's
operation lock (`inventory.service.idle_cluster`, `take_operation_lock`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine import Context, Submitted, Template, submit_task
from obpilot.errors import (
    ClusterStateConflict,
    LastServerStop,
    ServerNotFound,
    ServerStateConflict,
    ZoneNotFound,
    ZoneStateConflict,
)
from obpilot.flows import templates
from obpilot.iam.permissions import Principal
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Cluster, Server, Zone
from obpilot.inventory.state import (
    CLUSTER_FOR_ZONE_OPERATION,
    CLUSTER_OPERATION_FROM,
    SERVER_OPERATION_FROM,
    ZONE_OPERATION_FROM,
    Operation,
    stop_leaves_a_server_running,
    stop_leaves_a_zone_running,
    zone_operation_needs_running_cluster,
)
from obpilot.operations.schemas import RestartOptions, StopOptions

ZONE_TEMPLATES = {
    Operation.STOP: templates.STOP_ZONE,
    Operation.START: templates.START_ZONE,
    Operation.RESTART: templates.RESTART_ZONE,
}
SERVER_TEMPLATES = {
    Operation.STOP: templates.STOP_SERVER,
    Operation.START: templates.START_SERVER,
    Operation.RESTART: templates.RESTART_SERVER,
}


@dataclass(frozen=True)
class Caller:
    """Who asked for an operation, and the obpilot instance that accepted it (the task's
    `executor`)."""

    id: int | None
    name: str
    instance: str

    @classmethod
    def of(cls, principal: Principal, *, instance: str) -> Caller:
        return cls(id=principal.id, name=principal.username, instance=instance)


async def submit_for_cluster(
    session: AsyncSession,
    cluster: Cluster,
    template: Template,
    strings: dict[str, str],
    lists: dict[str, list[str]],
    caller: Caller,
) -> Submitted:
    """Submits `template` for `cluster` and gives the task the cluster's operation lock, in
    the caller's transaction (the cluster came from `inventory.service.idle_cluster`)."""
    context = Context.of(
        {"cluster_name": cluster.name, "cluster_id": str(cluster.id), **strings}, lists
    )
    submitted = await submit_task(
        session,
        template,
        context,
        creator_id=caller.id,
        creator_name=caller.name,
        executor=caller.instance,
        cluster_id=cluster.id,
        cluster_name=cluster.name,
        ob_cluster_id=cluster.ob_cluster_id,
    )
    await inventory.take_operation_lock(session, cluster, submitted.task.id)
    return submitted


def _check_cluster(cluster: Cluster, allowed: frozenset[str], operation: str) -> None:
    if cluster.status not in allowed:
        raise ClusterStateConflict(cluster.name, cluster.status, operation)


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
) -> Submitted:
    cluster = await inventory.idle_cluster(session, cluster_id)
    _check_cluster(cluster, CLUSTER_OPERATION_FROM[Operation.STOP], Operation.STOP)
    strings = {"former_cluster_status": cluster.status, **_options(options)}
    return await submit_for_cluster(
        session, cluster, templates.STOP_CLUSTER, strings, _all(cluster), caller
    )


async def start_cluster(session: AsyncSession, *, cluster_id: int, caller: Caller) -> Submitted:
    cluster = await inventory.idle_cluster(session, cluster_id)
    _check_cluster(cluster, CLUSTER_OPERATION_FROM[Operation.START], Operation.START)
    strings = {"former_cluster_status": cluster.status}
    return await submit_for_cluster(
        session, cluster, templates.START_CLUSTER, strings, _all(cluster), caller
    )


async def restart_cluster(
    session: AsyncSession, *, cluster_id: int, options: RestartOptions | None, caller: Caller
) -> Submitted:
    cluster = await inventory.idle_cluster(session, cluster_id)
    _check_cluster(cluster, CLUSTER_OPERATION_FROM[Operation.RESTART], Operation.RESTART)
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
    return await submit_for_cluster(session, cluster, template, strings, lists, caller)


# ------------------------------------------------------------------ zone and server


def _zone(cluster: Cluster, zone_name: str) -> Zone:
    for zone in cluster.zones:
        if zone.name == zone_name:
            return zone
    raise ZoneNotFound(cluster.id, zone_name)


async def zone_operation(
    session: AsyncSession,
    *,
    operation: Operation,
    cluster_id: int,
    zone_name: str,
    options: StopOptions | None,
    caller: Caller,
) -> Submitted:
    cluster = await inventory.idle_cluster(session, cluster_id)
    zone = _zone(cluster, zone_name)
    if zone.status not in ZONE_OPERATION_FROM[operation]:
        raise ZoneStateConflict(zone.name, zone.status, operation)
    if zone_operation_needs_running_cluster(operation):
        _check_cluster(cluster, CLUSTER_FOR_ZONE_OPERATION, f"{operation} zone")
    if operation == Operation.STOP and not stop_leaves_a_zone_running(cluster, zone):
        raise ZoneStateConflict(
            zone.name, zone.status, "stop of the last running zone; stop the cluster instead"
        )
    strings = {"zone_name": zone.name, "former_cluster_status": cluster.status, **_options(options)}
    lists = {"server_ids": [str(s.id) for s in zone.servers], "zone_names": [zone.name]}
    return await submit_for_cluster(
        session, cluster, ZONE_TEMPLATES[operation], strings, lists, caller
    )


def _server(cluster: Cluster, server_id: int) -> tuple[Zone, Server]:
    for zone in cluster.zones:
        for server in zone.servers:
            if server.id == server_id:
                return zone, server
    raise ServerNotFound(server_id)


async def server_operation(
    session: AsyncSession,
    *,
    operation: Operation,
    cluster_id: int,
    server_id: int,
    options: StopOptions | None,
    caller: Caller,
) -> Submitted:
    cluster = await inventory.idle_cluster(session, cluster_id)
    zone, server = _server(cluster, server_id)
    label = f"{server.ip}:{server.sql_port}"
    if server.status not in SERVER_OPERATION_FROM[operation]:
        raise ServerStateConflict(label, server.status, operation)
    if operation == Operation.STOP and not stop_leaves_a_server_running(cluster, server):
        raise LastServerStop(label, cluster.name)
    strings = {
        "server_id": str(server.id),
        "zone_name": zone.name,
        "former_cluster_status": cluster.status,
        **_options(options),
    }
    lists = {"server_ids": [str(server.id)], "zone_names": [zone.name]}
    return await submit_for_cluster(
        session, cluster, SERVER_TEMPLATES[operation], strings, lists, caller
    )
