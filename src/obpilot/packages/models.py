"""The software package table."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from obpilot.db.base import Base, BigId, TimestampMixin


class PackageKind(StrEnum):
    """What a package is, read from the package itself."""

    SEEKDB_WHEEL = "SEEKDB_WHEEL"  # pylibseekdb: the seekdb binary and libaio.so.1
    SEEKDB_RPM = "SEEKDB_RPM"
    OCEANBASE_RPM = "OCEANBASE_RPM"  # oceanbase-ce: bin/observer
    OCEANBASE_LIBS_RPM = "OCEANBASE_LIBS_RPM"  # oceanbase-ce-libs: lib/*.so


class SoftwarePackage(TimestampMixin, Base):
    __tablename__ = "software_package"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The package's own name (`pylibseekdb`, `seekdb`, `oceanbase-ce`, ...).
    name: Mapped[str] = mapped_column(String(128), index=True)
    file_name: Mapped[str] = mapped_column(String(255), unique=True)
    extension: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    sha1: Mapped[str] = mapped_column(String(40), unique=True)
    #: OCP's package type (`OB_SERVER_INSTALL_PACKAGE`, ...).
    type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    build_number: Mapped[str | None] = mapped_column(String(128))
    operating_system: Mapped[str | None] = mapped_column(String(64))
    architecture: Mapped[str] = mapped_column(String(32))
    #: Where the file is kept, under obpilot's home.
    path: Mapped[str] = mapped_column(String(1024))
    creator: Mapped[str | None] = mapped_column(String(64))
