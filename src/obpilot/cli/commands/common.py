"""What the API commands share: their options, the profile's client, confirmation, and
submitting an operation then following its task."""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.text import Text

from obpilot.cli import output
from obpilot.cli.client import ApiClient, Json, client_for
from obpilot.cli.errors import CliError, ExitCode
from obpilot.cli.output import OutputFormat
from obpilot.cli.profiles import PROFILE_ENV, ProfileStore
from obpilot.cli.progress import failure_report, reporter
from obpilot.cli.watch import TaskProgress, follow

T = TypeVar("T")

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", "-p", envvar=PROFILE_ENV, help="Profile to use [default: the current one]"
    ),
]
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table, wide, json or yaml (to stdout).")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Follow the task to its end (live, over SSE), or print its id and return.",
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(min=0.0, help="Stop waiting after this many seconds (exit code 124)."),
]


@dataclass(frozen=True)
class Session:
    """The chosen profile's name and a client of its server."""

    profile: str
    client: ApiClient
    explicit_profile: bool

    def command(self, text: str) -> str:
        """An `obpilot` command to suggest, naming the profile when it was chosen."""
        if self.explicit_profile:
            return f"obpilot {text} --profile {shlex.quote(self.profile)}"
        return f"obpilot {text}"


def open_session(profile: str | None) -> Session:
    name, chosen = ProfileStore.load().get(profile)
    return Session(name, client_for(chosen), explicit_profile=profile is not None)


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a command's work; its CliError becomes a message on stderr and its exit code."""
    try:
        return asyncio.run(work())
    except CliError as error:
        interrupted = error.exit_code is ExitCode.INTERRUPTED  # the user's wish, no error
        output.say(error.message if interrupted else f"error: {error.message}")
        raise typer.Exit(int(error.exit_code)) from None
    except KeyboardInterrupt:
        output.say("interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Confirm with -y (stdin is not a terminal): nothing done")
    if not typer.confirm(question, default=False, err=True):
        raise CliError("not confirmed: nothing done")


@dataclass(frozen=True)
class Follow:
    """How to treat the task an operation answered."""

    wait: bool
    timeout: float | None
    fmt: OutputFormat


def confirm_by_name(question: str, name: str, yes: bool) -> None:
    """For what cannot be undone: the user types `name` (unless -y)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Confirm with -y (stdin is not a terminal): nothing done")
    output.say(question)
    typed = typer.prompt(f"Type {name!r} to confirm", default="", show_default=False, err=True)
    if typed != name:
        raise CliError(f"not confirmed ({name!r} was not typed): nothing done")


def note_more(page: Json) -> None:
    """Says on stderr when a page shows fewer items than there are."""
    about = page.get("page") or {}
    shown, total = len(page["contents"]), about.get("totalElements", len(page["contents"]))
    if total > shown:
        output.say(f"{shown} of {total} shown: --size shows more")


async def submitted(
    session: Session,
    task: Json,
    how: Follow,
    trace_id: str | None,
    extra: Json | None = None,
) -> Json | None:
    """After an operation (whose request had `trace_id`): prints the task id (--no-wait) or
    follows the task, and answers the final task then. `extra` (such as the new cluster's
    `clusterId`) joins the task in the JSON and YAML documents."""
    if how.wait:
        return await watch(session, int(task["id"]), how, trace_id=trace_id, extra=extra)
    if output.is_document(how.fmt):
        output.print_document({**task, **(extra or {})}, how.fmt)
    else:
        print(task["id"], flush=True)
    output.say(
        f"task {task['id']} ({task['name']}) submitted; follow it with: "
        + session.command(f"task watch {task['id']}")
    )
    return None


async def watch(
    session: Session,
    task_id: int,
    how: Follow,
    trace_id: str | None,
    extra: Json | None = None,
) -> Json:
    """Follows the task to its end and answers it; a failed task ends with its report and
    exit code 1."""
    resume = session.command(f"task watch {task_id}")
    try:
        async with asyncio.timeout(how.timeout):
            final = await follow(session.client, task_id, reporter())
    except TimeoutError:
        raise CliError(
            f"task {task_id} still runs after {how.timeout:g} s; follow it again with: {resume}",
            ExitCode.TIMEOUT,
        ) from None
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels the work
        raise CliError(
            f"stopped watching; task {task_id} goes on. Follow it again with: {resume}",
            ExitCode.INTERRUPTED,
        ) from None
    if output.is_document(how.fmt):
        output.print_document({**final, **(extra or {})}, how.fmt)
    else:
        line = Text(f"Task {task_id} {final['name']}: ")
        line.append(output.status_text(final["status"]))
        output.stdout().print(line)
    if final["status"] == "FAILED":
        progress = TaskProgress.of(final)
        logs = {}
        for subtask in progress.failed():
            answer = await session.client.get(
                f"/api/v2/tasks/instances/{task_id}/subtasks/{subtask.id}/log"
            )
            logs[subtask.id] = str((answer or {}).get("log", ""))
        report = failure_report(
            progress, logs, trace_id or session.client.last_trace_id, session.command
        )
        raise CliError(report, ExitCode.TASK_FAILED)
    return final
