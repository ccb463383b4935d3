"""`obpilot host add|list`: the hosts servers run on."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from obpilot.cli import output
from obpilot.cli.client import Json
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
from obpilot.cli.errors import EXIT_CODES_HELP
from obpilot.cli.output import Column, OutputFormat, status_text

HOSTS = "/api/v2/compute/hosts"

host_app = typer.Typer(
    help="Hosts: the machines servers run on.", epilog=EXIT_CODES_HELP, no_args_is_help=True
)


class HostKind(StrEnum):
    DEDICATED_PHYSICAL_MACHINE = "DEDICATED_PHYSICAL_MACHINE"
    LOCAL = "LOCAL"


HOST_COLUMNS = [
    Column("id", lambda h: h["id"]),
    Column("name", lambda h: h.get("name")),
    Column("innerIpAddress", lambda h: h.get("innerIpAddress")),
    Column("status", lambda h: status_text(h.get("status"))),
    Column("operatingSystem", lambda h: h.get("operatingSystem")),
    Column("architecture", lambda h: h.get("architecture")),
    Column("idcName", lambda h: h.get("idcName")),
    Column("kind", lambda h: h.get("kind"), wide_only=True),
    Column("sshPort", lambda h: h.get("sshPort"), wide_only=True),
    Column("credential", lambda h: h.get("credentialId"), wide_only=True),
    Column("alias", lambda h: h.get("alias"), wide_only=True),
]


@host_app.command("list")
def list_hosts(
    size: Annotated[int, typer.Option(min=1, max=2000, help="At most this many.")] = 100,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """List the hosts."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            page = await client.get(HOSTS, size=size)
        output.emit(page, fmt, page["contents"], HOST_COLUMNS)
        note_more(page)

    run(work)


@host_app.command("add")
def add_hosts(
    addresses: Annotated[
        list[str], typer.Argument(help="The hosts' inner IP addresses.", show_default=False)
    ],
    credential: Annotated[
        int, typer.Option("--credential", min=1, help="The SSH credential's id.")
    ],
    ssh_port: Annotated[int, typer.Option("--ssh-port", min=1, max=65535)] = 22,
    kind: Annotated[HostKind, typer.Option("--kind")] = HostKind.DEDICATED_PHYSICAL_MACHINE,
    idc: Annotated[int | None, typer.Option("--idc", min=1, help="The IDC's id.")] = None,
    host_type: Annotated[
        int | None, typer.Option("--type", min=1, help="The host type's id.")
    ] = None,
    alias: Annotated[str | None, typer.Option("--alias")] = None,
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Add hosts: confirm (unless -y), follow the task, print the hosts' ids.

    obpilot logs in to each host with the credential and checks it. --no-wait prints the
    task id instead of following it."""

    async def work() -> None:
        body: Json = {
            "hostBasicDataList": [{"innerIpAddress": address} for address in addresses],
            "sshPort": ssh_port,
            "kind": kind.value,
            "credentialId": credential,
            "idcId": idc,
            "typeId": host_type,
            "alias": alias,
        }
        session = open_session(profile)
        async with session.client as client:
            confirm(f"Add {len(addresses)} host(s): {', '.join(addresses)}?", yes)
            data: Json = await client.post(f"{HOSTS}/batchCreate", body)
            host_ids = list(data.get("hostIds") or [])
            tasks = data.get("contents") or []
            task = tasks[0] if tasks else {"id": data["id"], "name": "Add hosts"}
            task = {**task, "id": data.get("id", task.get("id"))}
            output.say(f"host id(s) {', '.join(map(str, host_ids))} (task {task['id']})")
            how = Follow(wait=wait, timeout=timeout, fmt=fmt)
            await submitted(session, task, how, client.last_trace_id, {"hostIds": host_ids})
        if wait and not output.is_document(fmt):
            if len(host_ids) == len(addresses):
                for address, host_id in zip(addresses, host_ids, strict=True):
                    print(f"Host {address}: id {host_id}", flush=True)
            else:
                print(f"Hosts: ids {', '.join(map(str, host_ids))}", flush=True)

    run(work)
