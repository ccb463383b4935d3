"""The compute catalog's tables: regions, IDCs and host types."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from obpilot.db.base import Base, BigId, TimestampMixin


class Region(TimestampMixin, Base):
    __tablename__ = "compute_region"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(String(256))


class Idc(TimestampMixin, Base):
    """A data centre; it belongs to one region."""

    __tablename__ = "compute_idc"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(String(256))
    region_id: Mapped[int] = mapped_column(ForeignKey("compute_region.id"), index=True)


class HostType(TimestampMixin, Base):
    __tablename__ = "compute_host_type"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(String(256))
