"""`obpilot task list|show|watch|logs|retry|rollback|skip|cancel`: the task center."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Annotated

import typer
from rich.text import Text

from obpilot.cli import output
from obpilot.cli.client import Json
from obpilot.cli.commands.common import (
    Follow,
    OutputOption,
    ProfileOption,
    Session,
    TimeoutOption,
    WaitOption,
    YesOption,
    confirm,
    open_session,
    run,
    submitted,
    watch,
)
from obpilot.cli.errors import EXIT_CODES_HELP, CliError
from obpilot.cli.output import Column, OutputFormat, status_text
from obpilot.cli.watch import TaskProgress

TASKS = "/api/v2/tasks/instances"

task_app = typer.Typer(
    help="The task center: tasks and their subtasks.", epilog=EXIT_CODES_HELP, no_args_is_help=True
)

TaskArgument = Annotated[int, typer.Argument(min=1, help="The task's id.")]


def _done(task: Json) -> str:
    subtasks = task.get("subtasks", [])
    return f"{sum(s['status'] == 'SUCCESSFUL' for s in subtasks)}/{len(subtasks)}"


TASK_COLUMNS = [
    Column("id", lambda t: t["id"]),
    Column("name", lambda t: t["name"]),
    Column("status", lambda t: status_text(t["status"])),
    Column("operation", lambda t: t.get("operation")),
    Column("cluster", lambda t: (t.get("cluster") or {}).get("name")),
    Column("done", _done),
    Column("started", lambda t: t.get("startTime")),
    Column("finished", lambda t: t.get("finishTime"), wide_only=True),
    Column("creator", lambda t: (t.get("creator") or {}).get("name"), wide_only=True),
    Column("executor", lambda t: t.get("executor"), wide_only=True),
]

SUBTASK_COLUMNS = [
    Column("stage", lambda s: s["stage"]),
    Column("id", lambda s: s["id"]),
    Column(
        "name", lambda s: s["name"] + (f" #{s['parallelIdx']}" if s["parallelIdx"] >= 0 else "")
    ),
    Column("status", lambda s: status_text(s["status"])),
    Column("operation", lambda s: s.get("operation")),
    Column("runs", lambda s: s.get("runTime")),
    Column("error", lambda s: s.get("errorMessage")),
    Column("started", lambda s: s.get("startTime"), wide_only=True),
    Column("finished", lambda s: s.get("finishTime"), wide_only=True),
    Column("executor", lambda s: s.get("executor"), wide_only=True),
]


@task_app.command("list")
def list_tasks(
    status: Annotated[
        list[str] | None, typer.Option(help="RUNNING, FAILED or SUCCESSFUL (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Part of the task's name.")] = None,
    cluster: Annotated[str | None, typer.Option(help="Part of the cluster's name.")] = None,
    size: Annotated[int, typer.Option(min=1, max=2000, help="At most this many.")] = 50,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """List tasks, newest first."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            page = await client.get(
                TASKS, status=status, name=name, clusterName=cluster, size=size, sort="id,desc"
            )
        output.emit(page, fmt, page["contents"], TASK_COLUMNS)

    run(work)


@task_app.command("show")
def show_task(
    task: TaskArgument, profile: ProfileOption = None, fmt: OutputOption = OutputFormat.TABLE
) -> None:
    """Show a task and its subtasks, by stage."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client as client:
            found: Json = await client.get(f"{TASKS}/{task}")
        if output.is_document(fmt):
            output.print_document(found, fmt)
            return
        title = Text(f"Task {found['id']} {found['name']}: ")
        title.append(status_text(found["status"]))
        title.append(f" ({found.get('operation')}, {_done(found)} done)")
        output.stdout().print(title)
        by_id = {s["id"]: s for s in found["subtasks"]}
        stages = TaskProgress.of(found).stage_numbers()
        rows = [{**by_id[i], "stage": n} for i, n in sorted(stages.items(), key=lambda x: x[::-1])]
        output.emit(found, fmt, rows, SUBTASK_COLUMNS)

    run(work)


@task_app.command("watch")
def watch_task(
    task: TaskArgument,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Follow a task live (over SSE) until it ends; Ctrl-C stops watching only."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client:
            await watch(session, task, Follow(True, timeout, fmt), trace_id=None)

    run(work)


async def _print_logs(session: Session, task: int, subtask: int | None) -> None:
    found: Json = await session.client.get(f"{TASKS}/{task}")
    chosen = [s for s in found["subtasks"] if subtask is None or s["id"] == subtask]
    if not chosen:
        raise CliError(f"task {task} has no subtask {subtask}")
    for item in chosen:
        if subtask is None and not item.get("runTime"):
            continue  # never ran: no log
        answer = await session.client.get(f"{TASKS}/{task}/subtasks/{item['id']}/log")
        text = str((answer or {}).get("log", ""))
        prefix = "" if subtask is not None else f"[{item['id']} {item['name']}] "
        for line in text.splitlines():
            output.write_line(f"{prefix}{line}")


async def _follow_logs(session: Session, task: int, subtask: int | None) -> None:
    """Log lines as the task writes them (the lines so far first), until it ends."""
    names = {s["id"]: s["name"] for s in (await session.client.get(f"{TASKS}/{task}"))["subtasks"]}
    async with aclosing(session.client.events(f"{TASKS}/{task}/stream")) as events:
        async for event in events:
            if event.event == "end":
                return
            if event.event != "log":
                continue
            data = json.loads(event.data)
            if subtask is not None and data["subtaskId"] != subtask:
                continue
            prefix = (
                ""
                if subtask is not None
                else f"[{data['subtaskId']} {names.get(data['subtaskId'], '?')}] "
            )
            output.write_line(f"{prefix}{data['line'].rstrip(chr(10))}")


@task_app.command("logs")
def task_logs(
    task: TaskArgument,
    subtask: Annotated[
        int | None, typer.Argument(min=1, help="Only this subtask's log [default: every one]")
    ] = None,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Go on printing lines until the task ends.")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Print the logs of a task's subtasks (each run starts with a header line)."""

    async def work() -> None:
        session = open_session(profile)
        async with session.client:
            if follow_:
                await _follow_logs(session, task, subtask)
            else:
                await _print_logs(session, task, subtask)

    run(work)


# ------------------------------------------------------------------ actions


async def _act(
    session: Session, task: int, action: str, subtask: int | None, how: Follow, yes: bool
) -> None:
    """Runs `action` on the task (or on its subtask) after confirming, then follows it."""
    async with session.client as client:
        found: Json = await client.get(f"{TASKS}/{task}")
        if subtask is None:
            confirm(f"{action.capitalize()} task {task} ({found['name']}, {found['status']})?", yes)
            await client.post(f"{TASKS}/{task}/{action}")
        else:
            named = next((s for s in found["subtasks"] if s["id"] == subtask), None)
            if named is None:
                raise CliError(f"task {task} has no subtask {subtask}")
            confirm(
                f"{action.capitalize()} subtask {subtask} ({named['name']}, {named['status']}) "
                f"of task {task} ({found['name']})?",
                yes,
            )
            await client.post(f"{TASKS}/{task}/subtasks/{subtask}/{action}")
        trace_id = client.last_trace_id
        await submitted(session, await client.get(f"{TASKS}/{task}"), how, trace_id)


SubtaskArgument = Annotated[int | None, typer.Argument(min=1, help="The subtask's id.")]


@task_app.command("retry")
def retry_task(
    task: TaskArgument,
    subtask: SubtaskArgument = None,
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Run a FAILED task again from its failed subtasks (or one FAILED subtask), then
    follow it."""
    run(
        lambda: _act(open_session(profile), task, "retry", subtask, Follow(wait, timeout, fmt), yes)
    )


@task_app.command("rollback")
def rollback_task(
    task: TaskArgument,
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Undo a FAILED task: each step's rollback, walking its DAG backwards; then follow it."""
    run(
        lambda: _act(open_session(profile), task, "rollback", None, Follow(wait, timeout, fmt), yes)
    )


@task_app.command("skip")
def skip_subtask(
    task: TaskArgument,
    subtask: Annotated[int, typer.Argument(min=1, help="The FAILED subtask to skip.")],
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Mark a FAILED subtask done and let the task go on; then follow it."""
    run(lambda: _act(open_session(profile), task, "skip", subtask, Follow(wait, timeout, fmt), yes))


@task_app.command("cancel")
def cancel_subtask(
    task: TaskArgument,
    subtask: Annotated[int, typer.Argument(min=1, help="The RUNNING subtask to cancel.")],
    yes: YesOption = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    profile: ProfileOption = None,
    fmt: OutputOption = OutputFormat.TABLE,
) -> None:
    """Cancel a RUNNING subtask (it fails once its step stopped); then follow the task."""
    run(
        lambda: _act(
            open_session(profile), task, "cancel", subtask, Follow(wait, timeout, fmt), yes
        )
    )
