"""Creating and deleting clusters, adding and removing zones and servers: the rules.

A create is refused before anything is written, with every finding in one answer: first
what the request alone shows (400), then what the metadb knows (unknown host or package:
404; a taken name: 409), then a bounded look at each host through its agent (409: a port
in use, a directory that is not empty or not writable, too little memory or disk). No
metadb transaction stays open across that look: the reads are one short transaction, the
writes another that checks again what could have changed.

Deleting removes only what obpilot made: a cluster it took over is only forgotten
(`keepProcesses=true`), and a created cluster's directories must carry its marker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.compute import service as compute
from obpilot.credentials.service import host_target
from obpilot.db.engine import Database
from obpilot.engine import Submitted, Template
from obpilot.errors import (
    BadRequest,
    ClusterNotFound,
    ClusterStateConflict,
    Conflict,
    DuplicateName,
    FieldProblem,
    HostFindings,
    HostNotFound,
    InvalidServerParameter,
    NotFound,
    ServerNotFound,
    ZoneNotFound,
)
from obpilot.flows import lifecycle as flows
from obpilot.flows.install import (
    PlannedServer,
    findings_from_survey,
    server_dirs,
    server_needs,
    survey_host,
)
from obpilot.hosts.access import HostAccess, HostTarget
from obpilot.hosts.drivers import ProcessSpec, check_spec
from obpilot.inventory import service as inventory
from obpilot.inventory.models import (
    Cluster,
    ClusterOrigin,
    ClusterStatus,
    Host,
    Server,
    ServerKind,
    ServerStatus,
    ZoneStatus,
)
from obpilot.inventory.schemas import ClusterSpec, ServerSpec, ZoneSpec
from obpilot.lifecycle.schemas import (
    CLUSTER_NAME,
    DEFAULT_INSTALL_PATH,
    DEFAULT_RPC_PORT,
    DEFAULT_SQL_PORT,
    ZONE_NAME,
    ClusterCreate,
    ServerEntry,
    ServersAdd,
    ServersDelete,
    ZoneAdd,
    ZoneCreate,
    default_home,
    install_dir,
)
from obpilot.operations.service import Caller, submit_for_cluster
from obpilot.packages import service as packages
from obpilot.packages.contents import binary_relative_path, server_kind
from obpilot.packages.models import SoftwarePackage
from obpilot.secretbox import SecretBox
from obpilot.takeover.service import forget_cluster
from obpilot.tasks.schemas import SubmittedTaskOut
from obpilot.tasks.service import brief_of, brief_of_stored

PASSWORD_LENGTH = (8, 32)
#: Fields of OCP's create body that obpilot cannot honour.
REFUSED_TYPES = {"STANDBY": "standby clusters are not supported; create a PRIMARY cluster"}


@dataclass(frozen=True)
class Member:
    """One server of a request, resolved: where it goes and what it runs."""

    field: str  # its place in the request: zones[0].servers[1]
    zone: str
    host: Host
    kind: ServerKind
    sql_port: int
    rpc_port: int | None
    home: str
    data_path: str | None
    parameters: dict[str, str]
    package: SoftwarePackage

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p for p in (self.sql_port, self.rpc_port) if p is not None)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.host.inner_ip_address}:{self.sql_port}"

    def planned(self) -> PlannedServer:
        memory, disk = server_needs(self.kind, self.parameters)
        dirs = tuple(server_dirs(self.home, self.data_path))
        return PlannedServer(self.field, self.host.id, self.ports, dirs, memory, disk)

    def spec(self, cluster_name: str, ob_cluster_id: int) -> ProcessSpec:
        return ProcessSpec(
            kind=self.kind,
            sql_port=self.sql_port,
            home_path=self.home,
            rpc_port=self.rpc_port,
            binary_path=f"{self.home}/{binary_relative_path(self.package)}",
            parameters=self.parameters,
            zone_name=self.zone,
            cluster_name=cluster_name,
            ob_cluster_id=ob_cluster_id,
            server_ip=self.host.inner_ip_address,
        )


@dataclass
class Findings:
    problems: list[FieldProblem] = field(default_factory=list)

    def add(self, where: str, message: str, rejected: object = None) -> None:
        self.problems.append(FieldProblem(where, message, rejected))

    def raise_if_any(self, error: type[BadRequest] | type[Conflict], summary: str) -> None:
        if self.problems:
            lines = "; ".join(f"{p.field}: {p.message}" for p in self.problems)
            raise error(f"{summary}: {lines}", problems=self.problems)


# ------------------------------------------------------------------ create


async def create_cluster(
    database: Database,
    *,
    body: ClusterCreate,
    caller: Caller,
    host_access: HostAccess,
    secret_box: SecretBox,
) -> tuple[SubmittedTaskOut, int]:
    """The task "Create primary OB cluster" and the new cluster's id."""
    digest = request_digest(body, secret_box)
    findings = Findings()
    _check_request(body, findings)
    findings.raise_if_any(BadRequest, "The cluster cannot be created as asked")
    async with database.transaction() as session:
        repeated = await _repeated(session, body, digest, caller)
        if repeated is not None:
            return repeated
        await inventory.ensure_cluster_name_free(session, body.name)
        regions = await zone_regions(session, [zone.idc_name for zone in body.zones])
        members = await _members(session, body, findings)
        members = with_rootservices(members, _zone_firsts(members))
        findings.raise_if_any(BadRequest, "The cluster cannot be created as asked")
        await _check_against_registered(session, members, findings)
        targets = {
            m.host.id: await host_target(session, host=m.host, secret_box=secret_box)
            for m in members
        }
    check_members(members, body.name, body.ob_cluster_id, findings)
    findings.raise_if_any(BadRequest, "The cluster cannot be created as asked")
    await _check_hosts(members, host_access, targets, findings)
    findings.raise_if_any(HostFindings, "The hosts cannot take the cluster's servers")
    kind = members[0].kind
    async with database.transaction(write=True) as session:
        repeated = await _repeated(session, body, digest, caller)
        if repeated is not None:
            return repeated
        password = body.root_secret
        cluster = await inventory.register_cluster(
            session,
            spec=ClusterSpec(
                name=body.name,
                ob_cluster_id=body.ob_cluster_id,
                ob_version=members[0].package.version,
                status=ClusterStatus.CREATING,
                creator=caller.name,
                zones=_zone_specs(body.zones, members, regions),
                origin=ClusterOrigin.CREATED,
                full_version=body.full_version,
                client_token=body.client_token,
                request_digest=digest,
            ),
            root_password_encrypted=secret_box.encrypt(password) if password else None,
        )
        cluster = await inventory.idle_cluster(session, cluster.id)
        servers = [server for zone in cluster.zones for server in zone.servers]
        submitted = await _submit(
            session, cluster, flows.CREATE_CLUSTER[kind], caller, servers, body.full_version
        )
        await inventory.stamp_created_by(
            session, cluster=cluster, servers=servers, task_id=submitted.task.id
        )
        return brief_of(submitted.task, submitted.dag), cluster.id


def request_digest(body: ClusterCreate, secret_box: SecretBox) -> str | None:
    """What tells a repeated request (its clientToken's) from another: a keyed digest of the
    body, since it holds root's password (None without a clientToken: nothing to tell)."""
    if body.client_token is None:
        return None
    wire = body.model_dump(mode="json", by_alias=True, exclude={"client_token"})
    wire["password"] = body.root_secret
    wire.pop("rootPassword", None)
    return secret_box.digest("create cluster request", json.dumps(wire, sort_keys=True).encode())


async def _repeated(
    session: AsyncSession, body: ClusterCreate, digest: str | None, caller: Caller
) -> tuple[SubmittedTaskOut, int] | None:
    """The same clientToken of the same user with the same body answers the same task;
    with another body it is a conflict. Each user's tokens are their own: another user's
    token never answers their cluster or task."""
    if body.client_token is None:
        return None
    cluster = await inventory.find_cluster_by_token(
        session, creator=caller.name, client_token=body.client_token
    )
    if cluster is None:
        return None
    if cluster.request_digest != digest:
        raise Conflict(
            f"clientToken {body.client_token!r} was used for another request (cluster "
            f"{cluster.name}); use a new token for a new request"
        )
    task_id = cluster.create_task_id
    brief = await brief_of_stored(session, task_id) if task_id is not None else None
    if brief is None:
        raise Conflict(f"clientToken {body.client_token!r}: its task is no longer kept")
    return brief, cluster.id


def _check_request(body: ClusterCreate, findings: Findings) -> None:
    """What the request alone shows."""
    if not re.fullmatch(CLUSTER_NAME, body.name):
        findings.add(
            "name",
            "a cluster name starts with a letter and has 2 to 48 letters, digits or underscores",
            body.name,
        )
    if body.type != "PRIMARY":
        findings.add("type", REFUSED_TYPES.get(body.type, "the type must be PRIMARY"), body.type)
    password = body.root_secret
    if password is None:
        findings.add("password", "give root's password for the sys tenant")
    elif not PASSWORD_LENGTH[0] <= len(password) <= PASSWORD_LENGTH[1]:
        findings.add("password", "the password has 8 to 32 characters")
    if body.password is not None and body.root_password is not None:
        findings.add("rootPassword", "give password or rootPassword, not both")
    if not body.zones:
        findings.add("zones", "a cluster needs at least one zone")
    names = [zone.name for zone in body.zones]
    for index, zone in enumerate(body.zones):
        if not re.fullmatch(ZONE_NAME, zone.name):
            findings.add(f"zones[{index}].name", "a zone name starts with a letter", zone.name)
        if names.index(zone.name) != index:
            findings.add(f"zones[{index}].name", f"zone {zone.name} is named twice", zone.name)
        if not zone.servers:
            findings.add(f"zones[{index}].servers", f"zone {zone.name} has no server")
        if zone.root_server is not None and zone.root_server not in [
            server.host_id for server in zone.servers
        ]:
            findings.add(
                f"zones[{index}].rootServer",
                "the root server must be one of the zone's servers (its host id)",
                zone.root_server,
            )
        if zone.rpm_name is None and body.rpm_name is None:
            findings.add(f"zones[{index}].rpmName", "name the package (rpmName) to install")
    if body.primary_zone is not None:
        unknown = [z for z in re.split(r"[;,]", body.primary_zone) if z and z not in names]
        if unknown:
            findings.add("primaryZone", f"not zones of the cluster: {', '.join(unknown)}")
    attributes = body.attributes
    if attributes is not None and attributes.log_disk_path is not None:
        findings.add(
            "attributes.LogDiskPath",
            "a separate log disk path is not supported: logs live under the data path",
            attributes.log_disk_path,
        )
    for index, parameter in enumerate(body.startup_parameters):
        if parameter.name in ("data_dir", "rootservice_list"):
            findings.add(
                f"startupParameters[{index}].name",
                f"{parameter.name} is set by obpilot from the cluster's layout",
                parameter.name,
            )


async def zone_regions(session: AsyncSession, idc_names: Sequence[str | None]) -> dict[str, str]:
    """Each IDC a zone names must exist (404 otherwise); the region each is in."""
    regions = {}
    for name in {n for n in idc_names if n}:
        found = await compute.idc_by_name(session, name)
        if found is None:
            raise NotFound(
                f"IDC {name!r} does not exist; create it first (POST /api/v2/compute/idcs)"
            )
        regions[name] = found[1].name
    return regions


async def _members(session: AsyncSession, body: ClusterCreate, findings: Findings) -> list[Member]:
    attributes = body.attributes
    install_path = (attributes.install_path if attributes else None) or DEFAULT_INSTALL_PATH
    chosen: dict[str, SoftwarePackage] = {}
    members = []
    for zone_index, zone in enumerate(body.zones):
        rpm_name = zone.rpm_name or body.rpm_name
        assert rpm_name is not None  # checked with the request
        if rpm_name not in chosen:
            chosen[rpm_name] = await packages.find_for_install(session, rpm_name)
        package = chosen[rpm_name]
        for field_name, asked, has in (
            ("architecture", zone.architecture, package.architecture),
            ("packageOperatingSystem", zone.package_operating_system, package.operating_system),
        ):
            if asked is not None and asked != has:
                findings.add(
                    f"zones[{zone_index}].{field_name}",
                    f"{package.file_name} is for {has}, not {asked}",
                    asked,
                )
        members += await _resolve_servers(
            session,
            zone.name,
            f"zones[{zone_index}]",
            zone.servers,
            package,
            findings,
            install_path=install_dir(install_path, body.name),
            startup={p.name: p.value for p in body.startup_parameters},
            sql_port=attributes.sql_port if attributes else None,
            rpc_port=attributes.svr_port if attributes else None,
            data_path=attributes.data_disk_path if attributes else None,
        )
    return members


async def _resolve_servers(
    session: AsyncSession,
    zone: str,
    where: str,
    servers: Sequence[ServerEntry],
    package: SoftwarePackage,
    findings: Findings,
    *,
    install_path: str,
    startup: dict[str, str],
    sql_port: int | None = None,
    rpc_port: int | None = None,
    data_path: str | None = None,
) -> list[Member]:
    try:
        kind = server_kind(package)
    except ValueError as error:
        findings.add(f"{where}.rpmName", str(error), package.file_name)
        return []
    hosts = await inventory.hosts_by_id(session, {server.host_id for server in servers})
    members = []
    for index, entry in enumerate(servers):
        host = hosts.get(entry.host_id)
        if host is None:
            raise HostNotFound(entry.host_id)
        field_name = f"{where}.servers[{index}]" if where else f"servers[{index}]"
        if host.status not in inventory.HOSTS_READY_FOR_SERVERS:
            findings.add(
                f"{field_name}.hostId",
                f"host {host.name} is {host.status}: only a host whose Prepare host task "
                "succeeded (AVAILABLE) takes servers",
                host.id,
            )
        port = entry.sql_port or sql_port or DEFAULT_SQL_PORT
        rpc: int | None = entry.rpc_port or rpc_port or DEFAULT_RPC_PORT
        if kind == ServerKind.SEEKDB:
            if entry.rpc_port is not None:
                findings.add(f"{field_name}.rpcPort", "a seekdb server has no RPC port")
            rpc = None
            if data_path is not None:
                findings.add(
                    "attributes.DataDiskPath",
                    "a seekdb server keeps its data under its base dir (homePath)",
                    data_path,
                )
        homes = [p for p in (entry.home_path, entry.base_dir) if p]
        if len(homes) > 1:
            findings.add(f"{field_name}.baseDir", "homePath and baseDir name the same thing")
        home = homes[0] if homes else default_home(install_path, zone, port)
        for label, path in (("homePath", home), ("DataDiskPath", data_path)):
            if path is not None and (problem := _path_problem(path)):
                findings.add(f"{field_name}.{label}", problem, path)
        parameters = {**startup, **entry.parameters}
        data = None
        if kind == ServerKind.OBSERVER:
            data = canonical_path(data_path or f"{home}/store")
            parameters["data_dir"] = data
        members.append(
            Member(
                field=field_name,
                zone=zone,
                host=host,
                kind=kind,
                sql_port=port,
                rpc_port=rpc,
                home=canonical_path(home) if home.startswith("/") else home,
                data_path=data,
                parameters=parameters,
                package=package,
            )
        )
    return members


def with_rootservices(
    members: list[Member], rootservices: Sequence[Server | Member]
) -> list[Member]:
    """New observers start naming the cluster's rootservices, the first server of each
    zone (`-r ip:rpc:sql;...`, as obd passes it): the request's own on a create, the
    running cluster's when they join it."""
    if not members or members[0].kind != ServerKind.OBSERVER:
        return members
    listed = ";".join(f"{ip}:{rpc}:{sql}" for ip, rpc, sql in map(_address, rootservices))
    return [
        dataclasses.replace(m, parameters={**m.parameters, "rootservice_list": listed})
        for m in members
    ]


def _address(server: Server | Member) -> tuple[str, int | None, int]:
    if isinstance(server, Member):
        return server.host.inner_ip_address, server.rpc_port, server.sql_port
    return server.ip, server.port, server.sql_port


def _zone_firsts(members: Sequence[Member]) -> list[Member]:
    firsts: dict[str, Member] = {}
    for member in members:
        firsts.setdefault(member.zone, member)
    return list(firsts.values())


def _path_problem(path: str) -> str | None:
    if not path.startswith("/") or "\x00" in path:
        return "give an absolute path"
    if canonical_path(path) == "/":
        return "the root directory cannot be a server's directory"
    return None


def canonical_path(path: str) -> str:
    """One spelling of an absolute path: `normpath`, and a leading `//` (which POSIX lets
    normpath keep) made `/`, so that `//tmp/a/../b` and `/tmp/b` compare equal."""
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal


def _inside(path: str, parent: str) -> bool:
    path, parent = canonical_path(path), canonical_path(parent)
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_members(
    members: Sequence[Member], cluster_name: str, ob_cluster_id: int, findings: Findings
) -> None:
    """One kind of server per cluster; each server's spec passes its driver's checks;
    no two servers of the request share a port or a directory on one host."""
    if len({m.kind for m in members}) > 1:
        findings.add("rpmName", "a cluster runs one kind of server: seekdb or observer")
    for member in members:
        try:
            check_spec(member.spec(cluster_name, ob_cluster_id))
        except (ValueError, InvalidServerParameter) as error:
            findings.add(f"{member.field}.parameters", str(error))
    check_overlaps(members, findings)


def check_overlaps(members: Sequence[Member], findings: Findings) -> None:
    for index, first in enumerate(members):
        for second in members[index + 1 :]:
            if first.host.id != second.host.id:
                continue
            shared = sorted(set(first.ports) & set(second.ports))
            if shared:
                findings.add(
                    f"{second.field}.sqlPort",
                    f"port {shared[0]} on host {second.host.name} is also {first.field}'s",
                    shared[0],
                )
            for mine in first.planned().dirs:
                for theirs in second.planned().dirs:
                    if _inside(mine, theirs) or _inside(theirs, mine):
                        findings.add(
                            f"{second.field}.homePath",
                            f"{theirs} overlaps {mine} of {first.field} on host {second.host.name}",
                            theirs,
                        )


async def _check_against_registered(
    session: AsyncSession, members: Sequence[Member], findings: Findings
) -> None:
    for member in members:
        dirs = member.planned().dirs
        for other in await inventory.servers_on_host(session, member.host.id):
            shared = {other.sql_port, other.port} & set(member.ports)
            if shared:
                findings.add(
                    f"{member.field}.sqlPort",
                    f"port {min(p for p in shared if p)} on host {member.host.name} belongs "
                    f"to server {other.id} of another cluster",
                    min(p for p in shared if p),
                )
            theirs = [other.home_path, *([other.data_path] if other.data_path else [])]
            for mine in dirs:
                if any(_inside(mine, t) or _inside(t, mine) for t in theirs):
                    findings.add(
                        f"{member.field}.homePath",
                        f"{mine} overlaps the directories of server {other.id} of another "
                        f"cluster on host {member.host.name}",
                        mine,
                    )


async def _check_hosts(
    members: Sequence[Member],
    host_access: HostAccess,
    targets: dict[int, HostTarget],
    findings: Findings,
) -> None:
    """One bounded look per host, all hosts at once."""
    by_host: dict[int, list[Member]] = defaultdict(list)
    for member in members:
        by_host[member.host.id].append(member)

    async def look(host_id: int, on_host: list[Member]) -> None:
        host = on_host[0].host
        executor = host_access.executor(host_id, targets[host_id])
        plans = [member.planned() for member in on_host]
        try:
            survey = await survey_host(executor, plans)
        except Exception as error:  # the host itself is what failed: say so, by host
            findings.add(on_host[0].field, f"host {host.name} cannot be checked: {error}")
            return
        for finding in findings_from_survey(host.name, survey, plans):
            findings.add(finding.field, finding.message, finding.rejected)

    await asyncio.gather(*(look(host_id, on_host) for host_id, on_host in by_host.items()))


def _zone_specs(
    zones: Sequence[ZoneCreate], members: Sequence[Member], regions: dict[str, str]
) -> list[ZoneSpec]:
    by_zone: dict[str, list[Member]] = defaultdict(list)
    for member in members:
        by_zone[member.zone].append(member)
    return [
        ZoneSpec(
            name=zone.name,
            idc_name=zone.idc_name,
            region_name=zone.region_name or regions.get(zone.idc_name or ""),
            status=ZoneStatus.CREATING,
            servers=server_specs(by_zone[zone.name]),
        )
        for zone in zones
    ]


def server_specs(members: Sequence[Member]) -> list[ServerSpec]:
    return [
        ServerSpec(
            host_id=member.host.id,
            kind=member.kind,
            sql_port=member.sql_port,
            rpc_port=member.rpc_port,
            home_path=member.home,
            binary_path=f"{member.home}/{binary_relative_path(member.package)}",
            parameters=member.parameters,
            status=ServerStatus.CREATING,
            package_id=member.package.id,
            data_path=member.data_path,
        )
        for member in members
    ]


async def _submit(
    session: AsyncSession,
    cluster: Cluster,
    template: Template,
    caller: Caller,
    servers: Sequence[Server],
    full_version: str | None,
) -> Submitted:
    strings = {"full_version": full_version} if full_version else {}
    lists = {
        "server_ids": [str(s.id) for s in servers],
        "host_ids": host_ids_of(servers),
        "zone_names": sorted({z.name for z in cluster.zones}),
    }
    return await submit_for_cluster(session, cluster, template, strings, lists, caller)


def host_ids_of(servers: Sequence[Server]) -> list[str]:
    """The context list "Reserve host" and "Unreserve host" act on."""
    return [str(host_id) for host_id in sorted({server.host_id for server in servers})]


# ------------------------------------------------------------------ delete


async def delete_cluster(
    session: AsyncSession,
    *,
    cluster_id: int,
    keep_data: bool,
    purge: bool,
    keep_processes: bool,
    caller: Caller,
) -> SubmittedTaskOut | None:
    """A created cluster: the task "Delete primary OB cluster". A taken-over one is only
    forgotten, and only with `keepProcesses=true` (None: nothing to follow)."""
    cluster = await inventory.find_cluster_row(session, cluster_id)
    if cluster is None:
        raise ClusterNotFound(cluster_id)
    if cluster.origin != ClusterOrigin.CREATED or keep_processes:
        await forget_cluster(session, cluster_id=cluster_id, keep_processes=keep_processes)
        return None
    if keep_data and purge:
        raise BadRequest("keepData keeps every file and purge removes them: give one of them")
    cluster = await inventory.idle_cluster(session, cluster_id)
    if cluster.status in (ClusterStatus.CREATING, ClusterStatus.DELETING):
        raise ClusterStateConflict(cluster.name, cluster.status, "delete")
    template = flows.DELETE_CLUSTER_KEEP_DATA if keep_data else flows.DELETE_CLUSTER
    servers = [server for zone in cluster.zones for server in zone.servers]
    strings = {"keep_data": "true"} if keep_data else {}
    if purge:
        strings["purge"] = "true"
    lists = {
        "server_ids": [str(s.id) for s in servers],
        "host_ids": host_ids_of(servers),
        "zone_names": [zone.name for zone in cluster.zones],
    }
    submitted = await submit_for_cluster(session, cluster, template, strings, lists, caller)
    return brief_of(submitted.task, submitted.dag)


# ------------------------------------------------------------------ zones and servers


async def add_zone(
    database: Database,
    *,
    cluster_id: int,
    body: ZoneAdd,
    caller: Caller,
    host_access: HostAccess,
    secret_box: SecretBox,
) -> SubmittedTaskOut:
    """The task "Add OB zone": a new zone and its servers, checked as a create is."""
    findings = Findings()
    if not re.fullmatch(ZONE_NAME, body.name):
        findings.add("name", "a zone name starts with a letter", body.name)
    if not body.servers:
        findings.add("servers", f"zone {body.name} has no server")
    findings.raise_if_any(BadRequest, "The zone cannot be added as asked")
    zone = ZoneSpec(
        name=body.name,
        idc_name=body.idc_name,
        region_name=body.region_name,
        status=ZoneStatus.CREATING,
        servers=[],
    )
    return await _add(
        database, cluster_id, zone, body.servers, flows.ADD_ZONE, caller, host_access, secret_box
    )


async def add_servers(
    database: Database,
    *,
    cluster_id: int,
    body: ServersAdd,
    caller: Caller,
    host_access: HostAccess,
    secret_box: SecretBox,
) -> SubmittedTaskOut:
    """The task "Add OB server": new servers in an existing zone."""
    if not body.servers:
        raise BadRequest("Give the servers to add", problems=[FieldProblem("servers", "empty")])
    zone = ZoneSpec(name=body.zone_name, status=ZoneStatus.RUNNING, servers=[])
    return await _add(
        database, cluster_id, zone, body.servers, flows.ADD_SERVERS, caller, host_access, secret_box
    )


async def _add(
    database: Database,
    cluster_id: int,
    zone: ZoneSpec,
    servers: Sequence[ServerEntry],
    templates: Mapping[ServerKind, Template],
    caller: Caller,
    host_access: HostAccess,
    secret_box: SecretBox,
) -> SubmittedTaskOut:
    new_zone = templates is flows.ADD_ZONE
    findings = Findings()
    async with database.transaction() as session:
        cluster = await _created_cluster(session, cluster_id, "add zones or servers to")
        existing = {z.name for z in cluster.zones}
        if new_zone and zone.name in existing:
            raise DuplicateName(f"OB cluster {cluster.name} already has a zone {zone.name}")
        if not new_zone and zone.name not in existing:
            raise ZoneNotFound(cluster.id, zone.name)
        regions = await zone_regions(session, [zone.idc_name])
        if zone.idc_name and not zone.region_name:
            zone = zone.model_copy(update={"region_name": regions[zone.idc_name]})
        package = await _cluster_package(session, cluster)
        members = await _resolve_servers(
            session,
            zone.name,
            "",
            servers,
            package,
            findings,
            install_path=install_dir(DEFAULT_INSTALL_PATH, cluster.name),
            startup={},
        )
        findings.raise_if_any(BadRequest, "The servers cannot be added as asked")
        members = with_rootservices(
            members, [zone.servers[0] for zone in cluster.zones if zone.servers]
        )
        await _check_against_registered(session, members, findings)
        targets = {
            m.host.id: await host_target(session, host=m.host, secret_box=secret_box)
            for m in members
        }
        check_members(members, cluster.name, cluster.ob_cluster_id, findings)
    findings.raise_if_any(BadRequest, "The servers cannot be added as asked")
    await _check_hosts(members, host_access, targets, findings)
    findings.raise_if_any(HostFindings, "The hosts cannot take the new servers")
    async with database.transaction(write=True) as session:
        cluster = await inventory.idle_cluster(session, cluster_id)
        added = await inventory.add_members(
            session,
            cluster_id=cluster.id,
            zones=[zone.model_copy(update={"servers": server_specs(members)})],
        )
        submitted = await submit_for_cluster(
            session,
            cluster,
            templates[members[0].kind],
            {},
            {
                "server_ids": [str(s.id) for s in added],
                "host_ids": host_ids_of(added),
                "zone_names": [zone.name],
            },
            caller,
        )
        await inventory.stamp_created_by(
            session, cluster=None, servers=added, task_id=submitted.task.id
        )
        return brief_of(submitted.task, submitted.dag)


async def _created_cluster(session: AsyncSession, cluster_id: int, what: str) -> Cluster:
    cluster = await inventory.get_cluster(session, cluster_id=cluster_id)
    if cluster.origin != ClusterOrigin.CREATED:
        raise BadRequest(
            f"obpilot did not create OB cluster {cluster.name} (it took it over), so it "
            f"cannot {what} it: it never installs into or removes from a cluster it did "
            "not build"
        )
    return cluster


async def _cluster_package(session: AsyncSession, cluster: Cluster) -> SoftwarePackage:
    """The package the cluster's servers were installed from."""
    for zone in cluster.zones:
        for server in zone.servers:
            if server.package_id is not None:
                return await packages.get_package(session, package_id=server.package_id)
    raise BadRequest(f"OB cluster {cluster.name} has no server installed from a package")


def _refuse_observer_removal(cluster: Cluster) -> None:
    """An observer leaves its cluster only after OceanBase has moved its replicas away
    (`DELETE SERVER`, then a wait until it is gone); obpilot does not do that yet, and
    stopping it earlier could lose data."""
    kinds = {server.kind for zone in cluster.zones for server in zone.servers}
    if ServerKind.OBSERVER in kinds:
        raise BadRequest(
            f"Removing zones or servers of the observer cluster {cluster.name} is not "
            "supported: it needs DELETE SERVER and a wait until OceanBase has moved their "
            "replicas away. Delete the whole cluster, or remove them with OceanBase's tools"
        )


async def delete_zone(
    session: AsyncSession, *, cluster_id: int, zone_name: str, caller: Caller
) -> SubmittedTaskOut:
    """The task "Delete OB zone": its servers stopped, their directories moved aside,
    the zone forgotten."""
    cluster = await _created_cluster(session, cluster_id, "delete zones of")
    cluster = await inventory.idle_cluster(session, cluster.id)
    _refuse_observer_removal(cluster)
    zone = next((z for z in cluster.zones if z.name == zone_name), None)
    if zone is None:
        raise ZoneNotFound(cluster.id, zone_name)
    if len(cluster.zones) == 1:
        raise BadRequest(
            f"Zone {zone_name} is the last zone of OB cluster {cluster.name}: delete the "
            "cluster instead (DELETE /api/v2/ob/clusters/{id})"
        )
    lists = {
        "server_ids": [str(s.id) for s in zone.servers],
        "host_ids": host_ids_of(zone.servers),
        "zone_names": [zone.name],
    }
    submitted = await submit_for_cluster(session, cluster, flows.DELETE_ZONE, {}, lists, caller)
    return brief_of(submitted.task, submitted.dag)


async def delete_servers(
    session: AsyncSession, *, cluster_id: int, body: ServersDelete, caller: Caller
) -> SubmittedTaskOut:
    """The task "Delete OB server": the servers stopped, their directories moved aside,
    they are forgotten (a zone left without servers goes too)."""
    cluster = await _created_cluster(session, cluster_id, "delete servers of")
    cluster = await inventory.idle_cluster(session, cluster.id)
    _refuse_observer_removal(cluster)
    servers = {s.id: (s, zone) for zone in cluster.zones for s in zone.servers}
    unknown = [server_id for server_id in body.servers if server_id not in servers]
    if unknown:
        raise ServerNotFound(unknown[0])
    chosen = set(body.servers)
    if chosen == set(servers):
        raise BadRequest(
            f"These are all the servers of OB cluster {cluster.name}: delete the cluster "
            "instead (DELETE /api/v2/ob/clusters/{id})"
        )
    kept_zones = sorted(
        {zone.name for server, zone in servers.values() if server.id not in chosen}
        & {servers[server_id][1].name for server_id in chosen}
    )
    lists = {
        "server_ids": [str(i) for i in sorted(chosen)],
        "host_ids": host_ids_of([servers[i][0] for i in chosen]),
        "zone_names": kept_zones,
    }
    submitted = await submit_for_cluster(session, cluster, flows.DELETE_SERVERS, {}, lists, caller)
    return brief_of(submitted.task, submitted.dag)
