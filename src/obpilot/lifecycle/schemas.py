"""Create-cluster, add-zone, add-server and delete-server requests on the wire: OCP's
bodies, the fields OCP's field clients send beside them, and obpilot's per-server form
(`{hostId, sqlPort, rpcPort, homePath|baseDir, parameters}`) so that several servers can
share a host. Unknown fields are refused by name: an option obpilot cannot honour is
never silently dropped."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from obpilot.api.envelope import CamelModel
from obpilot.api.params import MAX_ID
from obpilot.inventory.schemas import ServerParameters, refuse_secret_names

#: OCP's rule for a cluster name.
CLUSTER_NAME = r"^[a-zA-Z][a-zA-Z0-9_]{1,47}$"
ZONE_NAME = r"^[a-zA-Z][a-zA-Z0-9_]{0,127}$"
DEFAULT_INSTALL_PATH = "/home/admin/oceanbase"
DEFAULT_SQL_PORT = 2881
DEFAULT_RPC_PORT = 2882
#: What `ob_server.home_path` and `binary_path` hold.
SERVER_PATH_LENGTH = 512
#: A home leaves room for the binary stored under it (`bin/observer` is the longest
#: `packages.contents.binary_relative_path`).
HOME_PATH_LENGTH = SERVER_PATH_LENGTH - len("/bin/observer")
#: The port with the most digits: the longest `<sqlPort>` a default home ends with.
LONGEST_PORT = 65535
HOME_PATH_RULE = (
    f"at most {HOME_PATH_LENGTH} characters, so that the binary's path under it fits in "
    f"{SERVER_PATH_LENGTH}"
)


def install_dir(install_path: str, cluster: str) -> str:
    """Where a cluster's servers go when they name no home: `<InstallPath>/<cluster>`."""
    return f"{install_path.rstrip('/')}/{cluster}"


def default_home(cluster_dir: str, zone: str, sql_port: int) -> str:
    """The home of a server that names none: `<cluster's install dir>/<zone>-<sqlPort>`."""
    return f"{cluster_dir}/{zone}-{sql_port}"


class StrictModel(CamelModel):
    model_config = ConfigDict(extra="forbid")


class ServerEntry(StrictModel):
    """One server; `homePath` (an observer's home, a seekdb's base dir) may be given as
    `baseDir`."""

    host_id: int = Field(ge=1, le=MAX_ID)
    sql_port: int | None = Field(default=None, ge=1, le=65535)
    rpc_port: int | None = Field(default=None, ge=1, le=65535)
    home_path: str | None = Field(
        default=None, min_length=1, max_length=HOME_PATH_LENGTH, description=HOME_PATH_RULE
    )
    base_dir: str | None = Field(
        default=None, min_length=1, max_length=HOME_PATH_LENGTH, description=HOME_PATH_RULE
    )
    parameters: ServerParameters = Field(default_factory=dict)


def _from_host_id(value: object) -> object:
    return {"hostId": value} if isinstance(value, int) and not isinstance(value, bool) else value


#: A server as OCP's body gives it (a host id) or as obpilot's form does.
ServerRef = Annotated[ServerEntry, BeforeValidator(_from_host_id)]


class StartupParameter(StrictModel):
    name: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=512)

    @field_validator("name")
    @classmethod
    def _not_a_credential(cls, name: str) -> str:
        # Every server's parameters start from these, and those refuse credentials.
        refuse_secret_names([name])
        return name


class Attributes(CamelModel):
    """OCP clients' PascalCase install attributes."""

    model_config = ConfigDict(extra="forbid", alias_generator=None, populate_by_name=True)

    install_path: str | None = Field(default=None, alias="InstallPath", max_length=400)
    data_disk_path: str | None = Field(default=None, alias="DataDiskPath", max_length=400)
    log_disk_path: str | None = Field(default=None, alias="LogDiskPath", max_length=400)
    sql_port: int | None = Field(default=None, alias="SqlPort", ge=1, le=65535)
    svr_port: int | None = Field(default=None, alias="SvrPort", ge=1, le=65535)


class ZoneCreate(StrictModel):
    name: str = Field(min_length=1, max_length=128)
    idc_name: str | None = Field(default=None, max_length=128)
    region_name: str | None = Field(default=None, max_length=128)
    rpm_name: str | None = Field(default=None, min_length=1, max_length=255)
    root_server: int | str | None = None
    servers: list[ServerRef] = Field(max_length=100)
    # What OCP clients send per zone about the package; checked against the package.
    architecture: str | None = Field(default=None, max_length=32)
    package_operating_system: str | None = Field(default=None, max_length=64)


class ClusterCreate(StrictModel):
    name: str = Field(min_length=1, max_length=128)
    rpm_name: str | None = Field(default=None, min_length=1, max_length=255)
    type: str = "PRIMARY"
    password: SecretStr | None = Field(default=None)
    root_password: SecretStr | None = Field(default=None, description="Same as password.")
    zones: list[ZoneCreate] = Field(max_length=100)
    primary_zone: str | None = Field(default=None, max_length=512)
    ob_cluster_id: int = Field(default=1, ge=1, le=4294901759)
    full_version: str | None = Field(default=None, max_length=128)
    startup_parameters: list[StartupParameter] = Field(default_factory=list, max_length=200)
    attributes: Attributes | None = None
    client_token: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("attributes")
    @classmethod
    def _default_homes_fit(
        cls, attributes: Attributes | None, info: ValidationInfo
    ) -> Attributes | None:
        """The homes made under InstallPath for servers that name none are held to a given
        home's length (`name` and `zones` come first, so they are validated by now)."""
        name, zones = info.data.get("name"), info.data.get("zones")
        if name is None or zones is None:
            return attributes
        given = attributes.install_path if attributes is not None else None
        root = install_dir(given or DEFAULT_INSTALL_PATH, name)
        for zone in zones:
            if all(server.home_path or server.base_dir for server in zone.servers):
                continue
            longest = len(default_home(root, zone.name, LONGEST_PORT))
            if longest > HOME_PATH_LENGTH:
                raise ValueError(
                    f"InstallPath makes homes of up to {longest} characters "
                    f"(<InstallPath>/<cluster>/<zone>-<sqlPort>) for the servers of zone "
                    f"{zone.name} that name none; a home has {HOME_PATH_RULE}: shorten "
                    "InstallPath or give each server its homePath"
                )
        return attributes

    @property
    def root_secret(self) -> str | None:
        given = self.password or self.root_password
        return given.get_secret_value() if given is not None else None


class ZoneAdd(StrictModel):
    name: str = Field(min_length=1, max_length=128)
    idc_name: str | None = Field(default=None, max_length=128)
    region_name: str | None = Field(default=None, max_length=128)
    servers: list[ServerRef] = Field(max_length=100)


class ServersAdd(StrictModel):
    zone_name: str = Field(min_length=1, max_length=128)
    servers: list[ServerRef] = Field(max_length=100)


class ServersDelete(StrictModel):
    servers: list[int] = Field(min_length=1, max_length=100, description="Server ids.")
