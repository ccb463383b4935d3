"""Software package shapes on the wire: OCP's package item."""

from __future__ import annotations

from obpilot.api.envelope import TimesOut


class PackageOut(TimesOut):
    id: int
    name: str
    file_name: str
    extension: str
    size: int
    sha1: str
    type: str
    version: str
    build_number: str | None
    operating_system: str | None
    architecture: str
    deletable: bool
    download_url: str | None = None  # obpilot serves no downloads
