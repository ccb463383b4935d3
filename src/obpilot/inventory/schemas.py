"""Inventory shapes on the wire, named as OCP names them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from ipaddress import ip_address
from typing import Annotated

from pydantic import AfterValidator, Field, field_serializer, field_validator, model_validator

from obpilot.api.envelope import CamelModel, TimesOut
from obpilot.compute.service import HostCatalog
from obpilot.formats import format_time
from obpilot.inventory.models import (
    Cluster,
    ClusterOrigin,
    ClusterStatus,
    Host,
    HostKind,
    Server,
    ServerKind,
    ServerStatus,
    Zone,
    ZoneStatus,
)

#: Server parameters named like these would hold a credential, stored in clear and shown to
#: every reader of the cluster; credentials have their own encrypted fields and store.
SECRET_PARAMETER = re.compile(r"password|secret|credential|private_key", re.IGNORECASE)
HIDDEN_VALUE = "******"


def refuse_secret_names(names: Iterable[str]) -> None:
    """Raises ValueError naming the parameter names that name a credential."""
    secret = sorted(name for name in names if SECRET_PARAMETER.search(name))
    if secret:
        raise ValueError(
            f"server parameters may not hold credentials ({', '.join(secret)}): they are "
            "stored in clear and shown to every reader of the cluster; give the sys tenant's "
            "root password as rootPassword, SSH credentials in /api/v2/profiles/me/credentials"
        )


def refuse_secret_parameters(parameters: dict[str, str]) -> dict[str, str]:
    refuse_secret_names(parameters)
    return parameters


ServerParameters = Annotated[
    dict[str, str], Field(max_length=200), AfterValidator(refuse_secret_parameters)
]


# OCP's clients send credentialId 0 when none is set (a Go zero value): for a LOCAL host
# that means no credential (`credential_for_kind`).
CredentialIdField = Annotated[
    int | None,
    Field(
        ge=0,
        le=2**63 - 1,
        description="Required unless kind is LOCAL; 0 (what OCP's clients send when none is "
        "set) is none.",
    ),
]


def credential_for_kind(kind: HostKind, credential_id: int | None) -> int | None:
    """The credential a host of `kind` is reached with: 0 is none, which only a LOCAL
    host may have."""
    if credential_id != 0:
        return credential_id
    if kind == HostKind.LOCAL:
        return None
    raise ValueError(
        f"credentialId 0 names no credential: a {kind} host is reached over SSH and needs one"
    )


class HostCreate(CamelModel):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    alias: str | None = Field(default=None, max_length=128)
    inner_ip_address: str = Field(min_length=1, max_length=64)
    ssh_port: int = Field(default=22, ge=1, le=65535)
    kind: HostKind = HostKind.DEDICATED_PHYSICAL_MACHINE
    credential_id: CredentialIdField = None
    description: str | None = Field(default=None, max_length=256)
    idc_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    type_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    host_key_fingerprint: str | None = Field(
        default=None,
        pattern=r"^SHA256:[A-Za-z0-9+/]{43}$",
        description="The host's SSH key as `ssh-keygen -lf` prints it (SHA256:...): the "
        "credential is sent only to a host presenting that key. Required with a password "
        "credential; a private key may pin the key the host offers at first contact.",
    )

    @model_validator(mode="after")
    def _credential_for_kind(self) -> HostCreate:
        self.credential_id = credential_for_kind(self.kind, self.credential_id)
        return self

    @field_validator("inner_ip_address")
    @classmethod
    def _is_ip(cls, value: str) -> str:
        return host_address(value)


def host_address(value: str) -> str:
    """An IP address in its canonical spelling."""
    try:
        return str(ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


class HostOut(TimesOut):
    id: int
    name: str
    alias: str | None
    inner_ip_address: str
    ssh_port: int
    kind: str
    status: str
    credential_id: int | None
    description: str | None
    host_key_fingerprint: str | None = Field(
        default=None, description="SSH host key recorded when the host was added (SHA256)."
    )
    idc_id: int | None
    idc_name: str | None
    region_id: int | None
    region_name: str | None
    type_id: int | None
    type_name: str | None
    operating_system: str | None = Field(description="As the host reported it when prepared.")
    architecture: str | None


class HostIdList(CamelModel):
    host_id_list: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=1000
    )

    @field_validator("host_id_list")
    @classmethod
    def _distinct(cls, host_ids: list[int]) -> list[int]:
        repeated = sorted({host_id for host_id in host_ids if host_ids.count(host_id) > 1})
        if repeated:
            raise ValueError(f"host ids given more than once: {repeated}")
        return host_ids


def host_out(host: Host, catalog: HostCatalog) -> HostOut:
    """A host with the names of its IDC, region and type."""
    idc = catalog.idcs.get(host.idc_id) if host.idc_id is not None else None
    region = catalog.regions.get(idc.region_id) if idc is not None else None
    host_type = catalog.host_types.get(host.type_id) if host.type_id is not None else None
    return HostOut(
        id=host.id,
        name=host.name,
        alias=host.alias,
        inner_ip_address=host.inner_ip_address,
        ssh_port=host.ssh_port,
        kind=host.kind,
        status=host.status,
        credential_id=host.credential_id,
        description=host.description,
        host_key_fingerprint=host.host_key_fingerprint,
        idc_id=host.idc_id,
        idc_name=idc.name if idc else None,
        region_id=region.id if region else None,
        region_name=region.name if region else None,
        type_id=host.type_id,
        type_name=host_type.name if host_type else None,
        operating_system=host.operating_system,
        architecture=host.architecture,
        create_time=host.create_time,
        update_time=host.update_time,
    )


class ServerOut(CamelModel):
    id: int
    ip: str
    port: int | None = Field(description="RPC port.")
    sql_port: int
    kind: str
    home_path: str
    binary_path: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    version: str | None
    with_rootserver: bool
    status: str
    cluster_id: int
    zone_name: str
    region_name: str | None
    idc_name: str | None
    host_id: int
    start_time: datetime | None
    stop_time: datetime | None
    update_time: datetime

    @field_serializer("start_time", "stop_time", "update_time")
    def _render_time(self, value: datetime | None) -> str | None:
        return format_time(value) if value else None


class ZoneOut(CamelModel):
    id: int
    name: str
    idc_name: str | None
    region_name: str | None
    status: str
    cluster_id: int
    ob_cluster_id: int
    server_count: int
    host_count: int
    servers: list[ServerOut]


class ClusterOut(TimesOut):
    id: int
    name: str
    ob_cluster_id: int
    ob_version: str | None
    full_version: str | None = Field(
        description="The server software's full version (with its build), as OCP names it."
    )
    origin: ClusterOrigin = Field(
        description="CREATED: obpilot built it and deleting it removes its files; "
        "TAKEN_OVER: obpilot only forgets it."
    )
    type: str
    status: str
    creator: str | None
    server_count: int
    region_count: int
    zones: list[ZoneOut]


class ServerSpec(CamelModel):
    """One server of a cluster being registered."""

    host_id: int
    kind: ServerKind = ServerKind.SEEKDB
    sql_port: int = Field(ge=1, le=65535)
    rpc_port: int | None = Field(default=None, ge=1, le=65535)
    home_path: str = Field(min_length=1, max_length=512)
    binary_path: str | None = Field(default=None, min_length=1, max_length=512)
    parameters: ServerParameters = Field(default_factory=dict)
    version: str | None = None
    status: ServerStatus
    package_id: int | None = None
    data_path: str | None = None


class ZoneSpec(CamelModel):
    name: str = Field(min_length=1, max_length=128)
    idc_name: str | None = None
    region_name: str | None = None
    status: ZoneStatus
    servers: list[ServerSpec]


class ClusterSpec(CamelModel):
    name: str = Field(min_length=1, max_length=128)
    ob_cluster_id: int = Field(ge=1)
    ob_version: str | None = None
    status: ClusterStatus
    creator: str | None = None
    zones: list[ZoneSpec] = Field(min_length=1)
    origin: ClusterOrigin = ClusterOrigin.TAKEN_OVER
    full_version: str | None = None
    client_token: str | None = None
    request_digest: str | None = None


def server_out(server: Server, zone: Zone) -> ServerOut:
    return ServerOut(
        id=server.id,
        ip=server.ip,
        port=server.port,
        sql_port=server.sql_port,
        kind=server.kind,
        home_path=server.home_path,
        binary_path=server.binary_path,
        # A credential stored before such parameters were refused stays hidden.
        parameters={
            name: HIDDEN_VALUE if SECRET_PARAMETER.search(name) else str(value)
            for name, value in (server.parameters or {}).items()
        },
        version=server.version,
        with_rootserver=server.with_rootserver,
        status=server.status,
        cluster_id=server.cluster_id,
        zone_name=zone.name,
        region_name=zone.region_name,
        idc_name=zone.idc_name,
        host_id=server.host_id,
        start_time=server.start_time,
        stop_time=server.stop_time,
        update_time=server.update_time,
    )


def zone_out(zone: Zone, cluster: Cluster) -> ZoneOut:
    return ZoneOut(
        id=zone.id,
        name=zone.name,
        idc_name=zone.idc_name,
        region_name=zone.region_name,
        status=zone.status,
        cluster_id=cluster.id,
        ob_cluster_id=cluster.ob_cluster_id,
        server_count=len(zone.servers),
        host_count=len({server.host_id for server in zone.servers}),
        servers=[server_out(server, zone) for server in zone.servers],
    )


def cluster_out(cluster: Cluster) -> ClusterOut:
    return ClusterOut(
        id=cluster.id,
        name=cluster.name,
        ob_cluster_id=cluster.ob_cluster_id,
        ob_version=cluster.ob_version,
        full_version=cluster.full_version or cluster.ob_version,
        origin=ClusterOrigin(cluster.origin),
        type=cluster.type,
        status=cluster.status,
        creator=cluster.creator,
        server_count=sum(len(zone.servers) for zone in cluster.zones),
        region_count=len({zone.region_name for zone in cluster.zones if zone.region_name}),
        zones=[zone_out(zone, cluster) for zone in cluster.zones],
        create_time=cluster.create_time,
        update_time=cluster.update_time,
    )
