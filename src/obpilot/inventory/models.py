"""Inventory tables: hosts, and the clusters, zones and servers that run on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from obpilot.db.base import Base, BigId, TimestampMixin, UtcDateTime


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
    credential_id: Mapped[int | None] = mapped_column(BigId)
    description: Mapped[str | None] = mapped_column(String(256))


class Cluster(TimestampMixin, Base):
    __tablename__ = "ob_cluster"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    ob_cluster_id: Mapped[int] = mapped_column(BigId)
    ob_version: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16), default=ClusterType.PRIMARY)
    status: Mapped[str] = mapped_column(String(32), index=True)
    creator: Mapped[str | None] = mapped_column(String(64))

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
    version: Mapped[str | None] = mapped_column(String(64))
    with_rootserver: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    stop_time: Mapped[datetime | None] = mapped_column(UtcDateTime())

    zone: Mapped[Zone] = relationship(back_populates="servers", lazy="raise")
