"""`obpilot cluster create|delete|forget`, `obpilot zone add|delete`, `obpilot server
add|delete`: creating and destroying clusters and their parts. Each answers a task, which
the command follows like a stop does."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
import yaml

from obpilot.cli import output
from obpilot.cli.client import ApiClient, ApiError, Json
from obpilot.cli.commands.clusters import (
    CLUSTERS,
    ClusterArgument,
    cluster_app,
    resolve_cluster,
    resolve_server,
    server_app,
    zone_app,
)
from obpilot.cli.commands.common import (
    Follow,
    OutputOption,
    ProfileOption,
    Session,
    TimeoutOption,
    WaitOption,
    YesOption,
    confirm,
    confirm_by_name,
    open_session,
    run,
    submitted,
)
from obpilot.cli.errors import CliError, ExitCode
from obpilot.cli.output import OutputFormat

CLUSTER_NOT_FOUND = "OBE11001"
TAKEN_OVER = "TAKEN_OVER"

ServerSpecOption = Annotated[
    list[str],
    typer.Option(
        "--server",
        "-s",
        help="A server: HOSTID[:SQLPORT[:HOMEPATH]] (repeatable); without a port or a path, "
        "the cluster's defaults.",
    ),
]


def read_document(source: str) -> Json:
    """The mapping in a YAML or JSON file (JSON is YAML), or on stdin for `-`."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {source}: {error}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CliError(f"{source} is neither YAML nor JSON: {error}") from None
    if not isinstance(document, dict):
        raise CliError(f"{source} must hold one mapping (the request's body), not {text[:40]!r}")
    return document


def parse_server(spec: str) -> int | Json:
    """`HOSTID[:SQLPORT[:HOMEPATH]]` -> the host id alone, or `{hostId, sqlPort, homePath}`."""
    host, _, rest = spec.partition(":")
    port, _, home = rest.partition(":")
    if not host.isdigit() or (rest and not port.isdigit()) or (rest.endswith(":") and not home):
        raise CliError(
            f"bad --server {spec!r}: give HOSTID[:SQLPORT[:HOMEPATH]], e.g. 3:2881:/data/ob"
        )
    if not rest:
        return int(host)
    server: Json = {"hostId": int(host), "sqlPort": int(port)}
    if home:
        server["homePath"] = home
    return server


# ------------------------------------------------------------------ clusters


@cluster_app.command("create")
def create_cluster(
    file: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            help="The request's body (OCP's, camelCase) as YAML or JSON; - reads stdin.",
        ),
    ],
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create a cluster from a file: confirm (unless -y), follow its task, print its id.

    The file is POST /api/v2/ob/clusters's body. Unless --no-wait (which prints the task
    id), the task is followed live to the end, then the new cluster's id is printed."""

    async def work() -> None:
        body = read_document(file)
        given_zones = body.get("zones")
        zones: list[Json] = [
            z for z in (given_zones if isinstance(given_zones, list) else []) if isinstance(z, dict)
        ]
        servers = sum(len(z.get("servers") or []) for z in zones)
        session = open_session(profile)
        async with session.client as client:
            confirm(
                f"Create cluster {body.get('name')} ({len(zones)} zones, {servers} servers)?", yes
            )
            task = await client.post(CLUSTERS, body)
            cluster_id = task.get("clusterId")
            if cluster_id is not None:
                output.say(f"cluster {body.get('name')} gets id {cluster_id} (task {task['id']})")
            how = Follow(wait=wait, timeout=timeout, fmt=fmt)
            extra = {"clusterId": cluster_id}
            await submitted(session, task, how, client.last_trace_id, extra)
        if wait and not output.is_document(fmt):
            print(f"Cluster {body.get('name')}: id {cluster_id}", flush=True)

    run(work)


@cluster_app.command("delete")
def delete_cluster(
    cluster: ClusterArgument,
    keep_data: Annotated[
        bool,
        typer.Option("--keep-data", help="Stop and remove the servers, keep their files."),
    ] = False,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Remove the servers' files at once (no undo)."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask to type the cluster's name.")
    ] = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Delete a cluster obpilot created: type its name (unless -y), follow its task.

    Its processes stop and its servers go; their directories are renamed aside (kept with
    --keep-data, removed at once with --purge). A cluster obpilot took over is only
    forgotten: `obpilot cluster forget`."""

    async def work() -> None:
        if keep_data and purge:
            raise CliError("--keep-data and --purge exclude each other: choose one")
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
            name, cluster_id = found["name"], found["id"]
            if found.get("origin") == TAKEN_OVER:
                raise CliError(
                    f"cluster {name} was taken over, not created by obpilot, which does not "
                    "destroy it. To remove it from obpilot and leave its processes and files: "
                    + session.command(f"cluster forget {shlex.quote(name)}")
                )
            files = (
                "its files are kept"
                if keep_data
                else "its files are removed now"
                if purge
                else "its directories are renamed aside"
            )
            confirm_by_name(
                f"Delete cluster {name} (id {cluster_id}): its servers stop and go; {files}.",
                name,
                yes,
            )
            params = {"keepData": "true" if keep_data else None, "purge": "true" if purge else None}
            task = await client.delete(f"{CLUSTERS}/{cluster_id}", **params)
            how = Follow(wait=wait, timeout=timeout, fmt=fmt)
            await submitted(session, task, how, client.last_trace_id)
            if wait:
                await _check_gone(client, name, cluster_id)

    run(work)


async def _check_gone(client: ApiClient, name: str, cluster_id: int) -> None:
    """The honest end of a delete: the cluster is no longer there."""
    try:
        await client.get(f"{CLUSTERS}/{cluster_id}")
    except ApiError as error:
        if error.status == 404 and error.code == CLUSTER_NOT_FOUND:
            output.say(f"cluster {name} (id {cluster_id}) is deleted")
            return
        raise
    raise CliError(
        f"the task ended but cluster {name} (id {cluster_id}) is still there: "
        f"`obpilot cluster show {cluster_id}`",
        ExitCode.TASK_FAILED,
    )


@cluster_app.command("forget")
def forget_cluster(
    cluster: ClusterArgument,
    yes: YesOption = False,
    profile: ProfileOption = None,
) -> None:
    """Remove a cluster from obpilot only: its processes run on, its files stay."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
            confirm(
                f"Forget cluster {found['name']} (id {found['id']})? Its processes and files "
                "stay on the hosts.",
                yes,
            )
            await client.delete(f"{CLUSTERS}/{found['id']}", keepProcesses="true")
        output.say(f"cluster {found['name']} (id {found['id']}) forgotten; its processes run on")

    run(work)


# ------------------------------------------------------------------ zones and servers


async def _submit(
    session: Session, question: str, yes: bool, how: Follow, method: str, path: str, body: Json
) -> None:
    """Confirms, sends the operation, and follows its task."""
    client = session.client
    confirm(question, yes)
    task = await (client.delete(path) if method == "DELETE" else client.post(path, body))
    await submitted(session, task, how, client.last_trace_id)


@zone_app.command("add")
def add_zone(
    cluster: ClusterArgument,
    zone: Annotated[str, typer.Argument(help="The new zone's name.")],
    server: ServerSpecOption,
    idc: Annotated[str | None, typer.Option("--idc", help="The zone's IDC (by name).")] = None,
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Add a zone with its servers: confirm (unless -y), follow its task (or --no-wait)."""
    how = Follow(wait=wait, timeout=timeout, fmt=fmt)

    async def work() -> None:
        servers = [parse_server(spec) for spec in server]
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
            body: Json = {"name": zone, "servers": servers}
            if idc is not None:
                body["idcName"] = idc
            await _submit(
                session,
                f"Add zone {zone} ({len(servers)} servers) to cluster {found['name']}?",
                yes,
                how,
                "POST",
                f"{CLUSTERS}/{found['id']}/zones",
                body,
            )

    run(work)


@zone_app.command("delete")
def delete_zone(
    cluster: ClusterArgument,
    zone: Annotated[str, typer.Argument(help="The zone's name.")],
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Delete a zone and its servers: confirm (unless -y), follow its task (or --no-wait)."""
    how = Follow(wait=wait, timeout=timeout, fmt=fmt)

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
            known = [z["name"] for z in found.get("zones", [])]
            if zone not in known:
                raise CliError(
                    f"cluster {found['name']} has no zone {zone!r}; its zones: {', '.join(known)}"
                )
            await _submit(
                session,
                f"Delete zone {zone} and its servers from cluster {found['name']}?",
                yes,
                how,
                "DELETE",
                f"{CLUSTERS}/{found['id']}/zones/{quote(zone, safe='')}",
                {},
            )

    run(work)


@server_app.command("add")
def add_servers(
    cluster: ClusterArgument,
    zone: Annotated[str, typer.Option("--zone", "-z", help="The zone they join.")],
    server: ServerSpecOption,
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Add servers to a zone: confirm (unless -y), follow its task (or --no-wait)."""
    how = Follow(wait=wait, timeout=timeout, fmt=fmt)

    async def work() -> None:
        servers = [parse_server(spec) for spec in server]
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
            await _submit(
                session,
                f"Add {len(servers)} server(s) to zone {zone} of cluster {found['name']}?",
                yes,
                how,
                "POST",
                f"{CLUSTERS}/{found['id']}/servers",
                {"zoneName": zone, "servers": servers},
            )

    run(work)


@server_app.command("delete")
def delete_servers(
    cluster: ClusterArgument,
    servers: Annotated[
        list[str], typer.Argument(help="The servers: ids or ip:sqlPort.", show_default=False)
    ],
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Delete servers of a cluster: confirm (unless -y), follow its task (or --no-wait)."""
    how = Follow(wait=wait, timeout=timeout, fmt=fmt)

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
            chosen = [resolve_server(found, ref) for ref in servers]
            ids = list(dict.fromkeys(int(s["id"]) for s in chosen))
            shown = ", ".join(f"{s['id']} ({s['ip']}:{s['sqlPort']})" for s in chosen)
            await _submit(
                session,
                f"Delete server(s) {shown} from cluster {found['name']}?",
                yes,
                how,
                "POST",
                f"{CLUSTERS}/{found['id']}/servers/batchDelete",
                {"servers": ids},
            )

    run(work)
