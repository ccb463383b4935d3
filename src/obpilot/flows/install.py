"""Putting new servers on their hosts: the steps that create a cluster, add a zone or add
servers, and the host checks that a create runs before it writes anything and again as
its first subtasks (a host can change in between).

Every directory a new server gets carries an ownership marker (`.obpilot-owner`, written
by the agent's `claim_dirs`) naming the cluster, the server and the task. Rolling a
create back removes only directories whose marker names this task; deleting a cluster
later moves only directories whose marker names that cluster."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from obpilot.db.base import utcnow
from obpilot.engine import SubtaskError
from obpilot.flows.common import (
    FlowContext,
    FlowResources,
    ServerProcess,
    cluster_id_of,
    record_server_status,
    refresh_server_status,
    server_id_of,
    server_process,
)
from obpilot.flows.steps import HOST_FAILURES, VERIFIED_STATUS, FlowStep
from obpilot.hosts.drivers import ProcessDriver, driver_for
from obpilot.hosts.drivers.base import PidFileServerDriver
from obpilot.hosts.drivers.process import ProcessTimeouts
from obpilot.hosts.drivers.seekdb import effective_parameters, parse_size
from obpilot.hosts.executor import HostExecutor
from obpilot.hosts.protocol import (
    CLAIM_DIRS,
    FILE_SHA1,
    REMOVE_CLAIMED,
    SURVEY,
    ClaimDirsRequest,
    OwnerMarker,
    PathsRequest,
    RemoveClaimedRequest,
    SurveyAnswer,
    SurveyRequest,
)
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Server, ServerKind, ServerStatus
from obpilot.packages import service as packages
from obpilot.packages.contents import full_version_of, version_matches
from obpilot.packages.staging import StagedFile, binary_version, staged_files

#: What an observer needs at least, per server (obd's rule).
OBSERVER_MEMORY_FLOOR = 3 << 30
SURVEY_TIME_LIMIT = 10.0
COPY_TIME_LIMIT = 600.0


# ------------------------------------------------------------------ host checks


@dataclass(frozen=True)
class PlannedServer:
    """A server about to be put on a host: what it will take there."""

    #: Where findings about it point: a request field (`zones[0].servers[1]`) or a label.
    field: str
    host_id: int
    ports: tuple[int, ...]
    dirs: tuple[str, ...]
    memory: int  # bytes
    disk: int  # bytes of data and logs


@dataclass(frozen=True)
class Finding:
    field: str
    message: str
    rejected: object = None


def server_needs(kind: str, parameters: dict[str, str]) -> tuple[int, int]:
    """The memory and the disk (data and logs) a server of `kind` will take."""
    if kind == ServerKind.SEEKDB:
        effective = effective_parameters(parameters)
        memory = parse_size("memory_budget", effective["memory_budget"])
        disk = parse_size("datafile_size", effective["datafile_size"]) + parse_size(
            "log_disk_size", effective["log_disk_size"]
        )
        return memory, disk
    memory = OBSERVER_MEMORY_FLOOR
    if "memory_limit" in parameters:
        memory = max(memory, parse_size("memory_limit", parameters["memory_limit"]))
    disk = sum(
        parse_size(name, parameters[name])
        for name in ("datafile_size", "log_disk_size")
        if name in parameters
    )
    return memory, disk


def findings_from_survey(
    host_name: str,
    survey: SurveyAnswer,
    servers: Sequence[PlannedServer],
    sharing: Sequence[PlannedServer] = (),
) -> list[Finding]:
    """What stops `servers` from being put on this host, all at once; memory and disk are
    counted for them together with the other new servers `sharing` the host."""
    findings = []
    for server in servers:
        for port in server.ports:
            seen = survey["ports"].get(str(port))
            if seen and seen["listening"]:
                who = f"pid {seen['pid']} ({seen['command']})" if seen["pid"] else "another user"
                findings.append(
                    Finding(
                        server.field,
                        f"port {port} on host {host_name} is in use by {who}",
                        port,
                    )
                )
        for path in server.dirs:
            place = survey["paths"].get(path)
            if place is None:
                continue
            if place["exists"] and not place["is_dir"]:
                message = "exists and is not a directory"
            elif place["exists"] and place["entries"]:
                message = f"exists and is not empty ({', '.join(place['entries'])})"
            elif not place["writable"]:
                message = "is not writable" if place["exists"] else "cannot be created there"
            else:
                continue
            findings.append(Finding(server.field, f"{path} on host {host_name} {message}", path))
    together = [*servers, *sharing]
    memory = sum(server.memory for server in together)
    if memory > survey["memory_available"]:
        findings.append(
            Finding(
                servers[0].field,
                f"host {host_name} has {_gib(survey['memory_available'])} of memory available; "
                f"its new servers need {_gib(memory)}",
                memory,
            )
        )
    need_by_device: dict[int, int] = defaultdict(int)
    free_by_device: dict[int, int] = {}
    for server in together:
        place = survey["paths"].get(server.dirs[0])
        if place is not None:
            need_by_device[place["device"]] += server.disk
            free_by_device[place["device"]] = place["free_bytes"]
    for device, need in need_by_device.items():
        if need > free_by_device[device]:
            findings.append(
                Finding(
                    servers[0].field,
                    f"host {host_name} has {_gib(free_by_device[device])} of free disk where "
                    f"its new servers go; their data and logs need {_gib(need)}",
                    need,
                )
            )
    return findings


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB"


async def survey_host(executor: HostExecutor, servers: Sequence[PlannedServer]) -> SurveyAnswer:
    request: SurveyRequest = {
        "paths": sorted({path for server in servers for path in server.dirs}),
        "ports": sorted({port for server in servers for port in server.ports}),
    }
    return await executor.agent.call(
        SURVEY,
        request,
        step="check the host for new servers",
        time_limit=SURVEY_TIME_LIMIT,
    )


def planned(server: Server, field: str) -> PlannedServer:
    memory, disk = server_needs(server.kind, dict(server.parameters or {}))
    return PlannedServer(
        field=field,
        host_id=server.host_id,
        ports=tuple(port for port in (server.sql_port, server.port) if port is not None),
        dirs=tuple(server_dirs(server.home_path, server.data_path)),
        memory=memory,
        disk=disk,
    )


def server_dirs(home_path: str, data_path: str | None) -> list[str]:
    """The directories a server owns: its home, and its data directory when elsewhere."""
    dirs = [home_path]
    if data_path and not data_path.startswith(home_path.rstrip("/") + "/"):
        dirs.append(data_path)
    return dirs


# ------------------------------------------------------------------ shared by the steps


@dataclass(frozen=True)
class NewServer:
    """A server of this task, with a driver that logs in without a password: a new
    server's root has none until "Set sys password"."""

    process: ServerProcess
    driver: PidFileServerDriver

    @property
    def server(self) -> Server:
        return self.process.server

    @property
    def executor(self) -> HostExecutor:
        return self.driver.executor


async def new_server(ctx: FlowContext, server_id: int) -> NewServer:
    async with ctx.database.transaction() as session:
        server = await inventory.find_server(session, server_id)
        if server is None:
            raise SubtaskError(f"OB server {server_id} is no longer registered")
        process = await server_process(session, server, ctx.resources.secret_box)
    return NewServer(process, _driver(ctx.resources, process, password=None))


def _driver(
    resources: FlowResources, process: ServerProcess, *, password: str | None
) -> PidFileServerDriver:
    executor = resources.host_access.executor(process.host_id, process.target)
    spec = dataclasses.replace(process.spec, sql_password=password)
    driver = driver_for(spec, executor, ProcessTimeouts.from_settings(resources.settings))
    assert isinstance(driver, PidFileServerDriver)
    return driver


def task_servers(ctx: FlowContext) -> list[int]:
    return [int(value) for value in ctx.get_list("server_ids")]


def marker_of(ctx: FlowContext, server: Server) -> OwnerMarker:
    return {
        "cluster_id": server.cluster_id,
        "cluster": ctx.require("cluster_name"),
        "server_id": server.id,
        "task_id": ctx.task_id,
    }


def bootstrap_statements(zones: Sequence[tuple[str, str | None, Sequence[Server]]]) -> list[str]:
    """obd's bootstrap: one rootservice per zone (its first server) in `ALTER SYSTEM
    BOOTSTRAP`, then `ADD SERVER` for every other server. `zones`: (name, region, servers)."""
    clauses = []
    for name, region, servers in zones:
        first = servers[0]
        clauses.append(
            f"REGION {_quoted(region or 'sys_region')} ZONE {_quoted(name)} "
            f"SERVER {_quoted(f'{first.ip}:{first.port}')}"
        )
    statements = ["ALTER SYSTEM BOOTSTRAP " + ", ".join(clauses)]
    for name, _, servers in zones:
        statements += add_server_statements(servers[1:], name)
    return statements


def add_zone_statements(zone: str, idc: str | None, region: str | None) -> list[str]:
    """A new zone of a running observer cluster, started so that servers can join it."""
    named = (("IDC", idc), ("REGION", region))
    where = "".join(f" {word} {_quoted(value)}" for word, value in named if value)
    return [
        f"ALTER SYSTEM ADD ZONE {_quoted(zone)}{where}",
        f"ALTER SYSTEM START ZONE {_quoted(zone)}",
    ]


def add_server_statements(servers: Sequence[Server], zone: str) -> list[str]:
    return [
        f"ALTER SYSTEM ADD SERVER {_quoted(f'{server.ip}:{server.port}')} ZONE {_quoted(zone)}"
        for server in servers
    ]


def set_password_statement(password: str) -> str:
    return f"ALTER USER root IDENTIFIED BY {_quoted(password)}"


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ------------------------------------------------------------------ steps


class PrepareNewServers(FlowStep, abstract=True):
    """Unpacks the servers' package once on obpilot's machine, so that every server's
    install copies the same checked files, and asks its binary once for its version
    (checked against the request's `fullVersion`). Subclasses say what rolling back
    forgets."""

    timeout = 600
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        package_ids = set()
        async with ctx.database.transaction() as session:
            for server_id in task_servers(ctx):
                server = await inventory.find_server(session, server_id)
                if server is None or server.package_id is None:
                    raise SubtaskError(f"OB server {server_id} has no package to install")
                package_ids.add(server.package_id)
            chosen = [await packages.get_package(session, package_id=i) for i in package_ids]
            libs = {p.id: await packages.companion_libs(session, p) for p in chosen}
        home = ctx.resources.settings.home
        for package in chosen:
            for part in (package, libs[package.id]):
                if part is not None:
                    files = await asyncio.to_thread(staged_files, home, part)
                    ctx.log(
                        f"package {part.file_name}: {len(files)} files ready to install "
                        f"({', '.join(f.relative_path for f in files)})"
                    )
            full = await asyncio.to_thread(binary_version, home, package, libs[package.id])
            if full is None:
                ctx.log(f"{package.file_name}: its binary does not run here; each host says")
                continue
            wanted = ctx.get("full_version")
            if wanted and not version_matches(wanted, full):
                raise SubtaskError(
                    f"{package.file_name} installs version {full}, not fullVersion {wanted}"
                )
            ctx.log(f"{package.file_name}: its binary is version {full}")
            await ctx.publish(package_version_key(package.id), full)
            await self.found_version(ctx, full)

    async def found_version(self, ctx: FlowContext, full_version: str) -> None:
        return None


def package_version_key(package_id: int) -> str:
    """The output naming what a package's binary reported, when obpilot's machine ran it."""
    return f"full_version_package_{package_id}"


class PrepareInstallCluster(PrepareNewServers):
    name = "Prepare install cluster"

    async def found_version(self, ctx: FlowContext, full_version: str) -> None:
        """A cluster created without `fullVersion` shows the one its binary reported."""
        async with ctx.database.transaction(write=True) as session:
            await inventory.set_full_version(session, cluster_id_of(ctx), full_version)

    async def rollback(self, ctx: FlowContext) -> None:
        cluster_id = cluster_id_of(ctx)
        async with ctx.database.transaction(write=True) as session:
            await inventory.forget_cluster(session, cluster_id)
        ctx.log(f"cluster {ctx.get('cluster_name')} (id {cluster_id}) removed from obpilot")


class PrepareAddZone(PrepareNewServers):
    name = "Prepare add zone"

    async def rollback(self, ctx: FlowContext) -> None:
        await _forget_new_servers(ctx)


class PrepareAddObserver(PrepareNewServers):
    name = "Prepare add observer"

    async def rollback(self, ctx: FlowContext) -> None:
        await _forget_new_servers(ctx)


async def _forget_new_servers(ctx: FlowContext) -> None:
    ids = task_servers(ctx)
    async with ctx.database.transaction(write=True) as session:
        await inventory.remove_servers(session, ids)
    ctx.log(f"servers {ids} removed from obpilot")


class ReserveHost(FlowStep):
    """The hosts of the new servers are ONLINE: in use (OCP's step). Rolling back frees
    those that no other server uses."""

    name = "Reserve host"
    timeout = 60
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        host_ids = [int(value) for value in ctx.get_list("host_ids")]
        async with ctx.database.transaction(write=True) as session:
            await inventory.reserve_hosts(session, host_ids)
        ctx.log(f"hosts {host_ids} reserved for the new servers")

    async def rollback(self, ctx: FlowContext) -> None:
        host_ids = [int(value) for value in ctx.get_list("host_ids")]
        async with ctx.database.transaction(write=True) as session:
            freed = await inventory.free_hosts(session, host_ids, leaving=task_servers(ctx))
        ctx.log(f"hosts {freed} are AVAILABLE again" if freed else "every host stays in use")


class PreCheckInstall(FlowStep):
    """The host checks of the create request, again: the server's ports are free, its
    directories are missing or empty and can be written, and its host has the memory and
    disk for all the new servers this task puts there."""

    name = "Pre check for install OB"
    timeout = 300
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        async with ctx.database.transaction() as session:
            siblings = [
                server
                for server_id in task_servers(ctx)
                if (server := await inventory.find_server(session, server_id)) is not None
                and server.host_id == this.server.host_id
            ]
            host = await inventory.get_host(session, host_id=this.server.host_id)
        own = planned(this.server, this.driver.label)
        others = [planned(s, str(s.id)) for s in siblings if s.id != this.server.id]
        try:
            survey = await survey_host(this.executor, [own, *others])
        except HOST_FAILURES as error:
            raise SubtaskError(f"{this.driver.label}: cannot check the host: {error}") from None
        findings = findings_from_survey(host.name, survey, [own], others)
        if findings:
            raise SubtaskError("; ".join(finding.message for finding in findings))
        ctx.log(
            f"{this.driver.label}: ports {list(own.ports)} free, {list(own.dirs)} usable, "
            f"{_gib(survey['memory_available'])} of memory available"
        )


class MakeDirForOb(FlowStep):
    """Creates the server's directories with their ownership markers (or finds them made
    by an earlier run of this step)."""

    name = "Make dir for ob"
    timeout = 300
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        dirs = server_dirs(this.server.home_path, this.server.data_path)
        claim: ClaimDirsRequest = {"paths": dirs, "marker": marker_of(ctx, this.server)}
        answer = await this.driver.ask_agent(
            CLAIM_DIRS,
            claim,
            step="make the server's directories",
        )
        if answer["refused"]:
            raise SubtaskError(
                f"{this.driver.label}: "
                + "; ".join(f"{path} {why}" for path, why in answer["refused"].items())
            )
        ctx.log(f"{this.driver.label}: made {', '.join(answer['claimed'])}, each with its marker")

    async def rollback(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        dirs = server_dirs(this.server.home_path, this.server.data_path)
        removal: RemoveClaimedRequest = {"paths": dirs, "task_id": ctx.task_id}
        answer = await this.driver.ask_agent(REMOVE_CLAIMED, removal, step="remove its directories")
        for path in answer["changed"]:
            ctx.log(f"{this.driver.label}: removed {path}")
        for path, why in answer["skipped"].items():
            ctx.log(f"{this.driver.label}: left {path} alone: {why}")


class InstallPackage(FlowStep):
    """Copies the package's files into the server's home, checks each file's SHA-1 on the
    host, and checks the binary's version against the cluster's `fullVersion`."""

    name = "Install package"
    timeout = 1800
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        files = await self._files(ctx, this.server)
        home = this.server.home_path.rstrip("/")
        for staged in files:
            ctx.check_cancelled()
            await this.executor.put_file(
                staged.local_path,
                f"{home}/{staged.relative_path}",
                mode=staged.mode,
                step=f"install {staged.relative_path}",
                time_limit=COPY_TIME_LIMIT,
            )
        paths = {f"{home}/{staged.relative_path}": staged.sha1 for staged in files}
        digests: PathsRequest = {"paths": list(paths)}
        answer = await this.driver.ask_agent(
            FILE_SHA1, digests, step="check the installed files", wait=60
        )
        wrong = [path for path, sha1 in paths.items() if answer["sha1"].get(path) != sha1]
        if wrong:
            raise SubtaskError(f"{this.driver.label}: {', '.join(wrong)} differ from the package")
        ctx.log(f"{this.driver.label}: installed {len(files)} files, SHA-1 checked on the host")
        assert this.server.package_id is not None
        known = ctx.get(package_version_key(this.server.package_id))
        if known is None:
            await self._check_version(ctx, this)

    async def _files(self, ctx: FlowContext, server: Server) -> list[StagedFile]:
        assert server.package_id is not None
        async with ctx.database.transaction() as session:
            package = await packages.get_package(session, package_id=server.package_id)
            libs = await packages.companion_libs(session, package)
        chosen = [package] if libs is None else [package, libs]
        home = ctx.resources.settings.home
        staged = [await asyncio.to_thread(staged_files, home, p) for p in chosen]
        return [f for files in staged for f in files]

    async def _check_version(self, ctx: FlowContext, this: NewServer) -> None:
        binary = this.driver.known_binaries()[-1]
        flag = "--version" if this.server.kind == ServerKind.SEEKDB else "-V"
        result = await this.executor.run(
            [binary, flag],
            step=f"{this.driver.label}: {binary} {flag}",
            time_limit=60,
            env={"TELEMETRY_ENABLED": "false", "LD_LIBRARY_PATH": this.driver.path("lib")},
            check=False,
        )
        full = full_version_of(result.stdout + result.stderr)
        if result.exit_status != 0 or full is None:
            problem = await this.driver.binary_problem(binary)
            raise SubtaskError(str(problem) if problem else f"{binary} reports no version")
        wanted = ctx.get("full_version")
        if wanted and not version_matches(wanted, full):
            raise SubtaskError(f"{this.driver.label}: {binary} is {full}, not fullVersion {wanted}")
        ctx.log(f"{this.driver.label}: {binary} is version {full}")


class StartObserverWithParam(FlowStep):
    """Starts the new server with its parameters and waits until it answers SQL (as root,
    who has no password yet). Rolling back stops it."""

    name = "Start observer process with param"
    timeout = 1200
    resumable = True
    publishes = frozenset({VERIFIED_STATUS})

    async def execute(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        try:
            process = await this.driver.start(log=ctx.log)
        except HOST_FAILURES as error:
            await refresh_server_status(ctx, this.driver, this.server)
            raise SubtaskError(f"{this.driver.label}: start failed: {error}") from None
        await record_server_status(
            ctx.database, this.server.id, ServerStatus.STARTING, start_time=utcnow()
        )
        ctx.log(f"{this.driver.label}: {process.describe()}")
        await VERIFIED_STATUS.publish(ctx, this.server.id, ServerStatus.RUNNING)

    async def rollback(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        await stop_new_server(ctx, this.driver, this.server)


async def stop_new_server(ctx: FlowContext, driver: ProcessDriver, server: Server) -> None:
    try:
        await driver.stop(log=ctx.log)
    except HOST_FAILURES as error:
        raise SubtaskError(f"{driver.label}: stop failed: {error}") from None
    await record_server_status(ctx.database, server.id, ServerStatus.STOPPED, stop_time=utcnow())


class BootstrapOb(FlowStep):
    """observer clusters: `ALTER SYSTEM BOOTSTRAP` on the first server, naming one
    rootservice per zone, then `ADD SERVER` for the others (obd's way)."""

    name = "Bootstrap ob"
    timeout = 1800
    rollbackable = False

    async def execute(self, ctx: FlowContext) -> None:
        cluster_id = cluster_id_of(ctx)
        async with ctx.database.transaction() as session:
            cluster = await inventory.get_cluster(session, cluster_id=cluster_id)
        zones = [(zone.name, zone.region_name, zone.servers) for zone in cluster.zones]
        statements = bootstrap_statements(zones)
        first = await new_server(ctx, zones[0][2][0].id)
        for statement in statements:
            ctx.log(f"{first.driver.label}: {statement}")
        answer = await first.driver.run_sql(
            statements, password=None, step="bootstrap", time_limit=float(self.timeout - 60)
        )
        if not answer["ok"]:
            raise SubtaskError(f"{first.driver.label}: bootstrap failed: {answer['error']}")


class _JoinCluster(FlowStep, abstract=True):
    """observer clusters: SQL that a running server of the cluster (not a new one) runs
    for the new servers, as root with the cluster's password. The cluster then knows them:
    taking that back needs OceanBase to move replicas away, so these steps prohibit
    rollback (retry or skip them instead)."""

    timeout = 600
    rollbackable = False

    async def statements(self, ctx: FlowContext, new: list[Server]) -> list[str]:
        raise NotImplementedError

    async def execute(self, ctx: FlowContext) -> None:
        new_ids = set(task_servers(ctx))
        async with ctx.database.transaction() as session:
            cluster = await inventory.get_cluster(session, cluster_id=cluster_id_of(ctx))
        servers = [server for zone in cluster.zones for server in zone.servers]
        running = [s for s in servers if s.id not in new_ids and s.status == ServerStatus.RUNNING]
        if not running:
            raise SubtaskError("no running server of the cluster to add the new ones through")
        member = await new_server(ctx, running[0].id)
        statements = await self.statements(ctx, [s for s in servers if s.id in new_ids])
        for statement in statements:
            ctx.log(f"{member.driver.label}: {statement}")
        answer = await member.driver.run_sql(
            statements, password=member.process.spec.sql_password, step=self.name
        )
        if not answer["ok"]:
            raise SubtaskError(f"{member.driver.label}: {self.name} failed: {answer['error']}")


class AddZone(_JoinCluster):
    name = "Add zone"

    async def statements(self, ctx: FlowContext, new: list[Server]) -> list[str]:
        zone_name = ctx.get_list("zone_names")[0]
        async with ctx.database.transaction() as session:
            zone = await inventory.get_zone(
                session, cluster_id=cluster_id_of(ctx), zone_name=zone_name
            )
        return add_zone_statements(zone.name, zone.idc_name, zone.region_name)


class AddObserver(_JoinCluster):
    name = "Add observer"

    async def statements(self, ctx: FlowContext, new: list[Server]) -> list[str]:
        return add_server_statements(new, ctx.get_list("zone_names")[0])


class WaitObserverAccessible(FlowStep):
    """The server answers SQL (as root, with no password yet or with the cluster's)."""

    name = "Wait observer accessible"
    timeout = 600
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        this = await new_server(ctx, server_id_of(ctx))
        deadline = asyncio.get_running_loop().time() + self.timeout - 30
        while True:
            errors = []
            for password in (None, this.process.spec.sql_password):
                answer = await this.driver.run_sql(["SELECT 1"], password=password, step="login")
                if answer["ok"]:
                    ctx.log(f"{this.driver.label}: answers SQL ({answer['version']})")
                    return
                errors.append(answer["error"])
            if asyncio.get_running_loop().time() > deadline:
                raise SubtaskError(f"{this.driver.label}: does not answer SQL: {errors[-1]}")
            await ctx.sleep(1)


class SetSysPassword(FlowStep):
    """Gives root the cluster's password. Found already set (a run before this one set
    it): nothing to do."""

    name = "Set sys password"
    timeout = 300
    resumable = True
    per_server: ClassVar[bool] = True

    async def execute(self, ctx: FlowContext) -> None:
        if self.per_server:
            server_id = server_id_of(ctx)
        else:
            async with ctx.database.transaction() as session:
                cluster = await inventory.get_cluster(session, cluster_id=cluster_id_of(ctx))
            server_id = cluster.zones[0].servers[0].id
        this = await new_server(ctx, server_id)
        password = this.process.spec.sql_password
        if not password:
            ctx.log(f"{this.driver.label}: the cluster has no root password to set")
            return
        answer = await this.driver.run_sql(
            [set_password_statement(password)], password=None, step="set root's password"
        )
        if answer["ok"]:
            ctx.log(f"{this.driver.label}: root's password set")
            return
        check = await this.driver.run_sql(["SELECT 1"], password=password, step="login")
        if not check["ok"]:
            raise SubtaskError(
                f"{this.driver.label}: cannot set root's password: {answer['error']}"
            )
        ctx.log(f"{this.driver.label}: root's password was already set")


class SetClusterSysPassword(SetSysPassword):
    """observer clusters: one sys tenant for the whole cluster."""

    class_name = "obpilot.flows.install.SetClusterSysPassword"
    per_server = False
