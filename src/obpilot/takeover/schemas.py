"""The takeover request on the wire (`POST /api/v2/ob/clusters/takeOver`)."""

from __future__ import annotations

import posixpath

from pydantic import Field, SecretStr, field_validator, model_validator

from obpilot.api.envelope import CamelModel
from obpilot.api.params import MAX_ID
from obpilot.inventory.models import ServerKind
from obpilot.inventory.schemas import ServerParameters


def _absolute(value: str, field: str) -> str:
    if not value.startswith("/") or "\x00" in value:
        raise ValueError(f"{field} must be an absolute path on the host, got {value!r}")
    return posixpath.normpath(value)


class TakeOverServer(CamelModel):
    """One running or stopped server process to take over. `homePath` (an observer's home,
    a seekdb's base dir) may be given as `baseDir` instead."""

    host_id: int = Field(
        ge=1, le=MAX_ID, description="A registered host (GET /api/v2/compute/hosts)."
    )
    kind: ServerKind = Field(description="seekdb or observer.")
    sql_port: int = Field(ge=1, le=65535)
    rpc_port: int | None = Field(
        default=None, ge=1, le=65535, description="observer only (seekdb binds no RPC port)."
    )
    home_path: str | None = Field(default=None, min_length=1, max_length=512)
    base_dir: str | None = Field(
        default=None, min_length=1, max_length=512, description="Same as homePath."
    )
    binary_path: str | None = Field(default=None, min_length=1, max_length=512)
    parameters: ServerParameters = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_home(self) -> TakeOverServer:
        given = {_absolute(p, "homePath/baseDir") for p in (self.home_path, self.base_dir) if p}
        if not given:
            raise ValueError("give homePath (or baseDir): where the server's files are")
        if len(given) > 1:
            raise ValueError("homePath and baseDir name the same thing; give one of them")
        self.home_path = given.pop()
        self.base_dir = None
        if self.binary_path is not None:
            self.binary_path = _absolute(self.binary_path, "binaryPath")
        if self.kind == ServerKind.SEEKDB and self.rpc_port is not None:
            raise ValueError("a seekdb server has no RPC port; leave rpcPort out")
        if self.kind == ServerKind.OBSERVER and self.rpc_port is None:
            raise ValueError("an observer needs its rpcPort")
        if self.rpc_port is not None and self.rpc_port == self.sql_port:
            raise ValueError(f"sqlPort and rpcPort are both {self.sql_port}")
        return self

    @property
    def home(self) -> str:
        assert self.home_path is not None  # set by the validator
        return self.home_path


class TakeOverZone(CamelModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    idc_name: str | None = Field(default=None, max_length=128)
    region_name: str | None = Field(default=None, max_length=128)
    servers: list[TakeOverServer] = Field(min_length=1, max_length=1000)


class TakeOverRequest(CamelModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    ob_cluster_id: int = Field(ge=1, le=MAX_ID)
    root_password: SecretStr | None = Field(
        default=None,
        max_length=256,
        description="The sys tenant's root password (stored encrypted, never returned); "
        "omit it when root has none.",
    )
    zones: list[TakeOverZone] = Field(min_length=1, max_length=100)

    @field_validator("zones")
    @classmethod
    def _unique_zone_names(cls, zones: list[TakeOverZone]) -> list[TakeOverZone]:
        names = [zone.name for zone in zones]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"zone names must be unique within a cluster: {', '.join(repeated)}")
        return zones

    @property
    def servers(self) -> list[tuple[TakeOverZone, TakeOverServer]]:
        return [(zone, server) for zone in self.zones for server in zone.servers]
