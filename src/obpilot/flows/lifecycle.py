"""The templates that create and delete clusters, and add and remove zones and servers.
Step names are OCP's where it has the step ("Create primary OB cluster": Prepare install
cluster, Pre check for install OB, Make dir for ob, ...).

seekdb servers are single-node databases: a seekdb cluster's servers are independent
instances grouped by zone, so its create has no bootstrap and sets each server's root
password; an observer cluster is bootstrapped once, with one rootservice per zone."""

from __future__ import annotations

from obpilot.engine import Stage, Template, parallel, single
from obpilot.flows.install import (
    AddObserver,
    AddZone,
    BootstrapOb,
    InstallPackage,
    MakeDirForOb,
    PreCheckInstall,
    PrepareAddObserver,
    PrepareAddZone,
    PrepareInstallCluster,
    ReserveHost,
    SetClusterSysPassword,
    SetSysPassword,
    StartObserverWithParam,
    WaitObserverAccessible,
)
from obpilot.flows.removal import (
    CleanObserverHost,
    DeleteClusterInfo,
    DeleteObserverMetaInfo,
    DeleteZoneMetaInfo,
    PrepareDeleteCluster,
    PrepareDeleteObserver,
    PrepareDeleteZone,
    UnreserveHost,
)
from obpilot.flows.steps import (
    IDENTIFIED_PROCESS,
    STOPPED_BY_TASK,
    VERIFIED_STATUS,
    StopObserverProcess,
    UpdateClusterStatus,
    UpdateRunningClusterStatus,
    UpdateRunningObserverStatus,
    UpdateRunningZoneStatus,
    UpdateZoneStatus,
)
from obpilot.flows.templates import cluster_template
from obpilot.inventory.models import ServerKind

SERVERS = "server_ids"
ZONES = "zone_names"

_PUT_ON_HOSTS = [
    parallel(PreCheckInstall, over=SERVERS),
    parallel(MakeDirForOb, over=SERVERS),
    parallel(InstallPackage, over=SERVERS),
    parallel(StartObserverWithParam, over=SERVERS),
]
_RUNNING = [
    parallel(UpdateRunningObserverStatus, over=SERVERS),
    parallel(UpdateRunningZoneStatus, over=ZONES),
]

CREATE_CLUSTER = {
    ServerKind.SEEKDB: cluster_template(
        "ob.cluster.create.seekdb",
        "Create primary OB cluster",
        [
            single(PrepareInstallCluster),
            single(ReserveHost),
            *_PUT_ON_HOSTS,
            parallel(WaitObserverAccessible, over=SERVERS),
            parallel(SetSysPassword, over=SERVERS),
            *_RUNNING,
            single(UpdateRunningClusterStatus),
        ],
        hand_offs=[VERIFIED_STATUS],
    ),
    ServerKind.OBSERVER: cluster_template(
        "ob.cluster.create.observer",
        "Create primary OB cluster",
        [
            single(PrepareInstallCluster),
            single(ReserveHost),
            *_PUT_ON_HOSTS,
            single(BootstrapOb),
            parallel(WaitObserverAccessible, over=SERVERS),
            single(SetClusterSysPassword),
            *_RUNNING,
            single(UpdateRunningClusterStatus),
        ],
        hand_offs=[VERIFIED_STATUS],
    ),
}


def _add_servers(
    key: str, name: str, prepare: type[PrepareAddZone | PrepareAddObserver], joining: list[Stage]
) -> Template:
    """New servers put on their hosts; `joining`: how they join the cluster (seekdb servers
    are independent: each gets root's password; observers are added to the cluster)."""
    return cluster_template(
        key,
        name,
        [
            single(prepare),
            single(ReserveHost),
            *_PUT_ON_HOSTS,
            *joining,
            *_RUNNING,
            single(UpdateClusterStatus),
        ],
        hand_offs=[VERIFIED_STATUS],
    )


_SEEKDB_JOINS = [
    parallel(WaitObserverAccessible, over=SERVERS),
    parallel(SetSysPassword, over=SERVERS),
]
ADD_ZONE = {
    ServerKind.SEEKDB: _add_servers(
        "ob.zone.add.seekdb", "Add OB zone", PrepareAddZone, _SEEKDB_JOINS
    ),
    ServerKind.OBSERVER: _add_servers(
        "ob.zone.add.observer",
        "Add OB zone",
        PrepareAddZone,
        [single(AddZone), single(AddObserver), parallel(WaitObserverAccessible, over=SERVERS)],
    ),
}
ADD_SERVERS = {
    ServerKind.SEEKDB: _add_servers(
        "ob.server.add.seekdb", "Add OB server", PrepareAddObserver, _SEEKDB_JOINS
    ),
    ServerKind.OBSERVER: _add_servers(
        "ob.server.add.observer",
        "Add OB server",
        PrepareAddObserver,
        [single(AddObserver), parallel(WaitObserverAccessible, over=SERVERS)],
    ),
}

_STOP = parallel(StopObserverProcess, over=SERVERS)
_REMOVAL_HAND_OFFS = [STOPPED_BY_TASK, IDENTIFIED_PROCESS]

DELETE_CLUSTER = cluster_template(
    "ob.cluster.delete",
    "Delete primary OB cluster",
    [
        single(PrepareDeleteCluster),
        _STOP,
        parallel(CleanObserverHost, over=SERVERS),
        single(DeleteClusterInfo),
        single(UnreserveHost),
    ],
    hand_offs=_REMOVAL_HAND_OFFS,
)
#: `keepData=true`: the processes stop and obpilot forgets the cluster; every file stays.
DELETE_CLUSTER_KEEP_DATA = cluster_template(
    "ob.cluster.delete.keep_data",
    "Delete primary OB cluster",
    [single(PrepareDeleteCluster), _STOP, single(DeleteClusterInfo), single(UnreserveHost)],
    hand_offs=_REMOVAL_HAND_OFFS,
)
DELETE_ZONE = cluster_template(
    "ob.zone.delete",
    "Delete OB zone",
    [
        single(PrepareDeleteZone),
        _STOP,
        parallel(CleanObserverHost, over=SERVERS),
        single(DeleteZoneMetaInfo),
        single(UnreserveHost),
        single(UpdateClusterStatus),
    ],
    hand_offs=_REMOVAL_HAND_OFFS,
)
DELETE_SERVERS = cluster_template(
    "ob.server.delete",
    "Delete OB server",
    [
        single(PrepareDeleteObserver),
        _STOP,
        parallel(CleanObserverHost, over=SERVERS),
        single(DeleteObserverMetaInfo),
        single(UnreserveHost),
        parallel(UpdateZoneStatus, over=ZONES),
        single(UpdateClusterStatus),
    ],
    hand_offs=_REMOVAL_HAND_OFFS,
)

TEMPLATES: tuple[Template, ...] = (
    *CREATE_CLUSTER.values(),
    *ADD_ZONE.values(),
    *ADD_SERVERS.values(),
    DELETE_CLUSTER,
    DELETE_CLUSTER_KEEP_DATA,
    DELETE_ZONE,
    DELETE_SERVERS,
)
