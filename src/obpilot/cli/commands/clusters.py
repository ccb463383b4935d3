"""`obpilot cluster list|show|stop|start|restart`, `obpilot zone stop|start|restart`,
`obpilot server stop|start|restart`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from obpilot.cli import output
from obpilot.cli.client import ApiClient, Json
from obpilot.cli.commands.common import (
    Follow,
    OutputOption,
    ProfileOption,
    TimeoutOption,
    WaitOption,
    YesOption,
    confirm,
    note_more,
    open_session,
    run,
    submitted,
)
from obpilot.cli.errors import EXIT_CODES_HELP, CliError
from obpilot.cli.output import Column, OutputFormat, status_text

CLUSTERS = "/api/v2/ob/clusters"

cluster_app = typer.Typer(help="OceanBase clusters.", epilog=EXIT_CODES_HELP, no_args_is_help=True)
zone_app = typer.Typer(help="Zones of a cluster.", epilog=EXIT_CODES_HELP, no_args_is_help=True)
server_app = typer.Typer(help="Servers of a cluster.", epilog=EXIT_CODES_HELP, no_args_is_help=True)

ClusterArgument = Annotated[str, typer.Argument(help="The cluster's id or name.")]


async def resolve_cluster(client: ApiClient, ref: str) -> Json:
    """The cluster named by its id or its (exact) name."""
    if ref.isdigit():
        cluster: Json = await client.get(f"{CLUSTERS}/{ref}")
        return cluster
    page = await client.get(CLUSTERS, name=ref, size=2000)
    for found in page["contents"]:
        if found["name"] == ref:
            named: Json = await client.get(f"{CLUSTERS}/{found['id']}")
            return named
    raise CliError(f"no cluster named {ref!r} that you may read (`obpilot cluster list`)")


def servers_of(cluster: Json) -> list[Json]:
    return [server for zone in cluster.get("zones", []) for server in zone.get("servers", [])]


def resolve_server(cluster: Json, ref: str) -> Json:
    """The cluster's server named by its id or `ip:sqlPort`."""
    for server in servers_of(cluster):
        if ref in (str(server["id"]), f"{server['ip']}:{server['sqlPort']}"):
            return server
    known = ", ".join(f"{s['id']} ({s['ip']}:{s['sqlPort']})" for s in servers_of(cluster))
    raise CliError(f"cluster {cluster['name']} has no server {ref!r}; its servers: {known}")


CLUSTER_COLUMNS = [
    Column("id", lambda c: c["id"]),
    Column("name", lambda c: c["name"]),
    Column("status", lambda c: status_text(c["status"])),
    Column("zones", lambda c: len(c.get("zones", []))),
    Column("servers", lambda c: c.get("serverCount")),
    Column("obClusterId", lambda c: c.get("obClusterId"), wide_only=True),
    Column("version", lambda c: c.get("obVersion"), wide_only=True),
    Column("type", lambda c: c.get("type"), wide_only=True),
    Column("created", lambda c: c.get("createTime"), wide_only=True),
]

SERVER_COLUMNS = [
    Column("zone", lambda s: s["zoneName"]),
    Column("id", lambda s: s["id"]),
    Column("address", lambda s: f"{s['ip']}:{s['sqlPort']}"),
    Column("kind", lambda s: s["kind"]),
    Column("status", lambda s: status_text(s["status"])),
    Column("started", lambda s: s.get("startTime")),
    Column("host", lambda s: s.get("hostId"), wide_only=True),
    Column("home", lambda s: s.get("homePath"), wide_only=True),
    Column("stopped", lambda s: s.get("stopTime"), wide_only=True),
]


@cluster_app.command("list")
def list_clusters(
    name: Annotated[str | None, typer.Option(help="Names containing this, any case.")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only clusters in this status (repeatable).")
    ] = None,
    size: Annotated[int, typer.Option(min=1, max=2000, help="At most this many.")] = 100,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """List the clusters you may read."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            page = await client.get(CLUSTERS, name=name, status=status, size=size)
        output.emit(page, fmt, page["contents"], CLUSTER_COLUMNS)
        note_more(page)

    run(work)


@cluster_app.command("show")
def show_cluster(
    cluster: ClusterArgument,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show a cluster, its zones and its servers."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            found = await resolve_cluster(client, cluster)
        if output.is_document(fmt):
            output.print_document(found, fmt)
            return
        title = Text(f"Cluster {found['name']} (id {found['id']}): ")
        title.append(status_text(found["status"]))
        zones = ", ".join(f"{z['name']} {z['status']}" for z in found.get("zones", []))
        title.append(f"; zones: {zones}")
        output.stdout().print(title)
        output.emit(found, fmt, servers_of(found), SERVER_COLUMNS)

    run(work)


# ------------------------------------------------------------------ operations


class Target(StrEnum):
    CLUSTER = "cluster"
    ZONE = "zone"
    SERVER = "server"


class Verb(StrEnum):
    STOP = "stop"
    START = "start"
    RESTART = "restart"


async def _operate(target: Target, verb: Verb, given: dict[str, Any]) -> None:
    session = open_session(given["profile"])
    async with session.client as client:
        cluster = await resolve_cluster(client, given["cluster"])
        path = f"{CLUSTERS}/{cluster['id']}"
        what = f"cluster {cluster['name']} (id {cluster['id']}, {len(servers_of(cluster))} servers)"
        if target is Target.ZONE:
            zone = given["zone"]
            path += f"/zones/{quote(zone, safe='')}"
            what = f"zone {zone} of cluster {cluster['name']}"
        elif target is Target.SERVER:
            server = resolve_server(cluster, given["server"])
            path += f"/servers/{server['id']}"
            what = (
                f"server {server['id']} ({server['ip']}:{server['sqlPort']}, zone "
                f"{server['zoneName']}) of cluster {cluster['name']}"
            )
        body: Json | None = None
        if verb is not Verb.START and (given["force"] or given["freeze_before_stop"]):
            body = {"force": given["force"], "freezeBeforeStop": given["freeze_before_stop"]}
        forced = " at once (SIGKILL, no clean stop)" if body and body["force"] else ""
        confirm(f"{verb.value.capitalize()} {what}{forced}?", given["yes"])
        task = await client.post(f"{path}/{verb.value}", body)
        how = Follow(wait=given["wait"], timeout=given["timeout"], fmt=given["fmt"])
        await submitted(session, task, how, client.last_trace_id)


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


ZONE_ARGUMENT = _option("zone", Annotated[str, typer.Argument(help="The zone's name.")], ...)
SERVER_ARGUMENT = _option(
    "server", Annotated[str, typer.Argument(help="The server's id or ip:sqlPort.")], ...
)
STOP_OPTIONS = [
    _option(
        "force",
        Annotated[bool, typer.Option("--force", help="SIGKILL at once, no clean stop.")],
        False,
    ),
    _option(
        "freeze_before_stop",
        Annotated[
            bool,
            typer.Option("--freeze-before-stop", help="Observer clusters: a minor freeze first."),
        ],
        False,
    ),
]
COMMON_OPTIONS = [
    _option("yes", YesOption, False),
    _option("wait", WaitOption, True),
    _option("timeout", TimeoutOption, None),
    _option("profile", ProfileOption, None),
    _option("fmt", OutputOption, OutputFormat.TABLE),
]


def _operation_command(target: Target, verb: Verb) -> Callable[..., None]:
    """One command per (target, verb): the same flow, with the arguments its target names
    and the options its verb has."""

    def command(**given: Any) -> None:
        run(lambda: _operate(target, verb, given))

    parameters = [_option("cluster", ClusterArgument, ...)]
    parameters += {Target.ZONE: [ZONE_ARGUMENT], Target.SERVER: [SERVER_ARGUMENT]}.get(target, [])
    parameters += STOP_OPTIONS if verb is not Verb.START else []
    parameters += COMMON_OPTIONS
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = (
        f"{verb.value.capitalize()} a {target.value}: confirm (unless -y), then follow its "
        "task live to the end (unless --no-wait, which prints the task id)."
    )
    return command


for _target, _app in (
    (Target.CLUSTER, cluster_app),
    (Target.ZONE, zone_app),
    (Target.SERVER, server_app),
):
    for _verb in Verb:
        _app.command(_verb.value)(_operation_command(_target, _verb))
