"""`obpilot package upload|list|delete`: the software packages clusters are installed from."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from obpilot.cli import output
from obpilot.cli.client import Json
from obpilot.cli.commands.common import (
    OutputOption,
    ProfileOption,
    YesOption,
    confirm,
    note_more,
    open_session,
    run,
)
from obpilot.cli.errors import EXIT_CODES_HELP
from obpilot.cli.output import Column, OutputFormat

PACKAGES = "/api/v2/software-packages"
SHOWN_PROGRESS_FROM = 8 << 20  # bytes: a smaller file is sent before a bar would be seen

package_app = typer.Typer(
    help="Software packages (seekdb and OceanBase) that clusters are installed from.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)


def human_size(size: object) -> str:
    if not isinstance(size, int):
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


PACKAGE_COLUMNS = [
    Column("id", lambda p: p["id"]),
    Column("name", lambda p: p.get("name")),
    Column("version", lambda p: p.get("version")),
    Column("architecture", lambda p: p.get("architecture")),
    Column("size", lambda p: human_size(p.get("size"))),
    Column("sha1", lambda p: str(p.get("sha1") or "")[:12]),
    Column("deletable", lambda p: p.get("deletable")),
    Column("fileName", lambda p: p.get("fileName"), wide_only=True),
    Column("type", lambda p: p.get("type"), wide_only=True),
    Column("buildNumber", lambda p: p.get("buildNumber"), wide_only=True),
    Column("operatingSystem", lambda p: p.get("operatingSystem"), wide_only=True),
]


@package_app.command("list")
def list_packages(
    keyword: Annotated[str | None, typer.Option(help="Part of the name or file name.")] = None,
    size: Annotated[int, typer.Option(min=1, max=2000, help="At most this many.")] = 100,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """List the software packages."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            page = await client.get(PACKAGES, keyword=keyword, size=size)
        output.emit(page, fmt, page["contents"], PACKAGE_COLUMNS)
        note_more(page)

    run(work)


@contextmanager
def _upload_progress(file: Path, size: int) -> Iterator[Callable[[int], None] | None]:
    """A bar on stderr for a large file on a terminal; nothing otherwise."""
    if size < SHOWN_PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=output.stderr(),
        transient=True,
    )
    task = bar.add_task(f"uploading {file.name}", total=size)
    with bar:
        yield lambda sent: bar.update(task, completed=sent)


@package_app.command("upload")
def upload_package(
    file: Annotated[
        Path,
        typer.Argument(
            help="The package: an RPM or a pylibseekdb wheel.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Upload a software package (streamed from disk) and show what the server read of it."""
    size = file.stat().st_size

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            with _upload_progress(file, size) as progress:
                package: Json = await client.upload(PACKAGES, file, progress=progress)
        output.say(f"uploaded {file.name} ({human_size(size)}): package {package.get('id')}")
        output.emit(package, fmt, [package], PACKAGE_COLUMNS)

    run(work)


@package_app.command("delete")
def delete_package(
    package: Annotated[int, typer.Argument(min=1, help="The package's id.")],
    yes: YesOption = False,
    profile: ProfileOption = None,
) -> None:
    """Delete a software package (one that no cluster uses)."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            confirm(f"Delete software package {package}?", yes)
            await client.delete(f"{PACKAGES}/{package}")
        output.say(f"package {package} deleted")

    run(work)
