"""How a followed task looks on stderr: on a terminal, one live line per stage with its
counts and a spinner saying what the task waits for; elsewhere, a plain line each time a
stage starts or ends. And the report of a failed task."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rich.console import Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from obpilot.cli import output
from obpilot.cli.watch import Reporter, Stage, TaskProgress

ICONS = {"SUCCESSFUL": "✓", "FAILED": "✗", "RUNNING": "▸", "PENDING": "·"}


def _stage_line(stage: Stage, total: int) -> Text:
    style = output.STATUS_STYLES.get(stage.state, "")
    line = Text(f"{ICONS[stage.state]} ", style=style)
    line.append(f"[{stage.number}/{total}] {stage.label}: ")
    line.append(stage.summary(), style=style)
    return line


class LiveReporter(Reporter):
    """For a terminal: redraws the stages in place."""

    def __init__(self) -> None:
        self._live = Live(console=output.stderr(), refresh_per_second=8, transient=False)
        self._spinner = Spinner("dots")
        self._live.start()

    def update(self, progress: TaskProgress) -> None:
        stages = progress.stages()
        lines: list[Text | Spinner] = [
            Text(f"Task {progress.id} {progress.name}: {progress.status}", style="bold")
        ]
        lines += [_stage_line(stage, len(stages)) for stage in stages]
        if progress.status == "RUNNING" and not progress.ended:
            waiting = Text(progress.waiting_for(), style="dim")
            # One line: the spinner's text would wrap, and a wrapped live line flickers.
            waiting.truncate(self._live.console.width - 2, overflow="ellipsis")
            self._spinner.update(text=waiting)
            lines.append(self._spinner)
        self._live.update(Group(*lines))

    def close(self) -> None:
        self._live.stop()


class PlainReporter(Reporter):
    """For logs and pipes: a line when the task is seen and when a stage changes state."""

    def __init__(self) -> None:
        self._seen: dict[int, str] = {}
        self._announced = False

    def update(self, progress: TaskProgress) -> None:
        if not self._announced:
            output.say(f"Task {progress.id} {progress.name}: {progress.status}")
            self._announced = True
        stages = progress.stages()
        for stage in stages:
            if self._seen.get(stage.number, "PENDING") != stage.state:
                self._seen[stage.number] = stage.state
                output.say(_stage_line(stage, len(stages)))


def reporter() -> Reporter:
    return LiveReporter() if sys.stderr.isatty() else PlainReporter()


def failure_report(
    progress: TaskProgress,
    logs: dict[int, str],
    trace_id: str | None,
    command: Callable[[str], str],
) -> str:
    """The failed subtasks, the last lines of their logs, and the commands to run next
    (`command` spells an obpilot command for the user's profile)."""
    lines = [f"Task {progress.id} ({progress.name}) FAILED."]
    for subtask in progress.failed():
        where = f" #{subtask.parallel_idx}" if subtask.parallel_idx >= 0 else ""
        lines.append(
            f"Failed subtask {subtask.id} {subtask.name}{where}: "
            f"{subtask.error_message or 'no message'}"
        )
        tail = logs.get(subtask.id, "").rstrip("\n").splitlines()[-20:]
        if tail:
            lines.append(f"Last {len(tail)} line(s) of its log:")
            lines += [f"  {line}" for line in tail]
    if trace_id:
        lines.append(f"traceId: {trace_id}")
    lines.append("Next:")
    lines.append(f"  {command(f'task retry {progress.id}')}     # run the failed subtasks again")
    if not progress.prohibit_rollback:
        lines.append(f"  {command(f'task rollback {progress.id}')}  # undo what the task did")
    lines.append(f"  {command(f'task logs {progress.id}')}      # every subtask's log")
    return "\n".join(lines)
