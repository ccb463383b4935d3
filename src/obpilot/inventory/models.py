"""Inventory tables: hosts, and the clusters, zones and servers that run on them."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from obpilot.db.base import Base, BigId, TimestampMixin, UtcDateTime


class JsonObject(TypeDecorator[dict[str, Any]]):
    """A JSON object kept as TEXT, which every metadb dialect stores the same way."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else dict(json.loads(value))


class HostKind(StrEnum):
    LOCAL = "LOCAL"
    DEDICATED_PHYSICAL_MACHINE = "DEDICATED_PHYSICAL_MACHINE"
    DEDICATED_CONTAINER = "DEDICATED_CONTAINER"


class HostStatus(StrEnum):
    NEW = "NEW"
    AVAILABLE = "AVAILABLE"
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    DELETING = "DELETING"


class ClusterStatus(StrEnum):
    RUNNING = "RUNNING"
    CREATING = "CREATING"
    DELETING = "DELETING"
    STARTING = "STARTING"
    RESTARTING = "RESTARTING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    TAKINGOVER = "TAKINGOVER"
    MOVINGOUT = "MOVINGOUT"
    SWITCHOVER = "SWITCHOVER"
    FAILOVER = "FAILOVER"
    OPERATING = "OPERATING"
    UNAVAILABLE = "UNAVAILABLE"


class ClusterType(StrEnum):
    PRIMARY = "PRIMARY"
    STANDBY = "STANDBY"


class ZoneStatus(StrEnum):
    RUNNING = "RUNNING"
    UNAVAILABLE = "UNAVAILABLE"
    SERVICE_STOPPED = "SERVICE_STOPPED"
    STOPPED = "STOPPED"
    DELETED = "DELETED"
    CREATING = "CREATING"
    STOPPING = "STOPPING"
    STARTING = "STARTING"
    RESTARTING = "RESTARTING"
    DELETING = "DELETING"
    OPERATING = "OPERATING"


class ServerStatus(StrEnum):
    CREATING = "CREATING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RESTARTING = "RESTARTING"
    DELETING = "DELETING"
    UNAVAILABLE = "UNAVAILABLE"
    OPERATING = "OPERATING"
    DELETED = "DELETED"


class ClusterOrigin(StrEnum):
    """Whether obpilot built the cluster (and may remove its files) or took it over."""

    CREATED = "CREATED"
    TAKEN_OVER = "TAKEN_OVER"


class ServerKind(StrEnum):
    SEEKDB = "seekdb"
    OBSERVER = "observer"


class Host(TimestampMixin, Base):
    __tablename__ = "host"
    __table_args__ = (UniqueConstraint("inner_ip_address", "ssh_port"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    alias: Mapped[str | None] = mapped_column(String(128))
    inner_ip_address: Mapped[str] = mapped_column(String(64))
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default=HostStatus.AVAILABLE)
    credential_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("credential.id"))
    description: Mapped[str | None] = mapped_column(String(256))
    #: The SSH host key (OpenSSH public key line) recorded when the host was added;
    #: connections offering another key are refused. NULL for LOCAL hosts.
    host_key: Mapped[str | None] = mapped_column(Text)
    idc_id: Mapped[int | None] = mapped_column(ForeignKey("compute_idc.id"), index=True)
    type_id: Mapped[int | None] = mapped_column(ForeignKey("compute_host_type.id"), index=True)
    #: What the host reported when it was prepared (`Linux 6.1.0-...`, `x86_64`).
    operating_system: Mapped[str | None] = mapped_column(String(128))
    architecture: Mapped[str | None] = mapped_column(String(32))

    @property
    def host_key_fingerprint(self) -> str | None:
        """`SHA256:...`, as `ssh-keygen -l` shows it."""
        if not self.host_key:
            return None
        blob = base64.b64decode(self.host_key.split()[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"


class Cluster(TimestampMixin, Base):
    __tablename__ = "ob_cluster"
    __table_args__ = (UniqueConstraint("creator", "client_token"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    ob_cluster_id: Mapped[int] = mapped_column(BigId)
    ob_version: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16), default=ClusterType.PRIMARY)
    status: Mapped[str] = mapped_column(String(32), index=True)
    creator: Mapped[str | None] = mapped_column(String(64))
    #: The sys tenant's root password, encrypted (SecretBox); NULL when it is empty.
    root_password_encrypted: Mapped[str | None] = mapped_column(Text)
    #: The task holding the cluster's operation lock: set in the transaction that creates
    #: the task, cleared when it succeeds. One operation per cluster at a time.
    operation_task_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="SET NULL")
    )
    origin: Mapped[str] = mapped_column(String(16), default=ClusterOrigin.TAKEN_OVER)
    #: The server software's full version (`1.0.0.0-100000012025112711`), as OCP names it.
    full_version: Mapped[str | None] = mapped_column(String(128))
    #: A create request's idempotency token, its creator's own (unique per creator), and
    #: the keyed digest of its body: the same token with the same body answers the same
    #: task.
    client_token: Mapped[str | None] = mapped_column(String(128))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    #: The task that created the cluster (what a repeated clientToken answers).
    create_task_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="SET NULL")
    )

    zones: Mapped[list[Zone]] = relationship(
        back_populates="cluster", lazy="raise", order_by="Zone.id", passive_deletes=True
    )


class Zone(TimestampMixin, Base):
    __tablename__ = "ob_zone"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("ob_cluster.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    idc_name: Mapped[str | None] = mapped_column(String(128))
    region_name: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))

    cluster: Mapped[Cluster] = relationship(back_populates="zones", lazy="raise")
    servers: Mapped[list[Server]] = relationship(
        back_populates="zone", lazy="raise", order_by="Server.id", passive_deletes=True
    )


class Server(TimestampMixin, Base):
    __tablename__ = "ob_server"
    __table_args__ = (UniqueConstraint("host_id", "sql_port"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("ob_cluster.id", ondelete="CASCADE"), index=True
    )
    zone_id: Mapped[int] = mapped_column(ForeignKey("ob_zone.id", ondelete="CASCADE"))
    host_id: Mapped[int] = mapped_column(ForeignKey("host.id"))
    kind: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str] = mapped_column(String(64))
    port: Mapped[int | None] = mapped_column(Integer)
    sql_port: Mapped[int] = mapped_column(Integer)
    home_path: Mapped[str] = mapped_column(String(512))
    #: The server binary when not the kind's default (seekdb: found via pylibseekdb;
    #: observer: HOME/bin/observer).
    binary_path: Mapped[str | None] = mapped_column(String(512))
    #: Start parameters (seekdb `--parameter`, observer `-o` and flags), name -> value.
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JsonObject())
    version: Mapped[str | None] = mapped_column(String(64))
    with_rootserver: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Installed from this package (NULL: taken over, its software is not obpilot's).
    package_id: Mapped[int | None] = mapped_column(ForeignKey("software_package.id"), index=True)
    #: Where an observer keeps its data and redo logs (NULL: under its home).
    data_path: Mapped[str | None] = mapped_column(String(512))
    log_path: Mapped[str | None] = mapped_column(String(512))
    #: The task that created this server: only that task's rollback removes it.
    created_by_task_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    stop_time: Mapped[datetime | None] = mapped_column(UtcDateTime())

    zone: Mapped[Zone] = relationship(back_populates="servers", lazy="raise")
