"""Following a task to its end over the API's Server-Sent Events: the task's DAG folded
into stages (a subtask's stage is its longest distance from the start, so each parallel
fan-out is one stage), their counts as events arrive, and what the task waits for."""

from __future__ import annotations

import asyncio
import json
import re
from abc import ABC, abstractmethod
from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

from obpilot.cli.client import ApiClient, Json
from obpilot.cli.errors import CliError, ExitCode

WAIT_NODE = "Wait node"  # the engine's join between two fan-outs: not a stage of its own
ACTIVE = {"RUNNING", "CANCELING"}
RECONNECTS = 5
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d|Z)?\s*")  # a log line's time


@dataclass
class SubtaskState:
    id: int
    name: str
    status: str
    parallel_idx: int
    upstreams: list[int]
    error_message: str | None = None
    last_line: str = ""


@dataclass(frozen=True)
class Stage:
    """Subtasks at the same distance from the start: a step, or one step's fan-out."""

    number: int
    label: str
    counts: Counter[str]
    total: int

    @property
    def done(self) -> int:
        return self.counts["SUCCESSFUL"]

    @property
    def state(self) -> str:
        if self.counts["FAILED"]:
            return "FAILED"
        if any(self.counts[s] for s in ACTIVE):
            return "RUNNING"
        if self.done == self.total:
            return "SUCCESSFUL"
        return "PENDING"

    def summary(self) -> str:
        parts = [f"{self.done}/{self.total} done"]
        parts += [
            f"{self.counts[s]} {s.lower()}"
            for s in ("RUNNING", "CANCELING", "FAILED")
            if self.counts[s]
        ]
        return ", ".join(parts)


@dataclass
class TaskProgress:
    """What is known of a task, kept up to date by its stream's events."""

    id: int
    name: str
    status: str
    prohibit_rollback: bool
    subtasks: dict[int, SubtaskState]
    ranks: list[list[int]] = field(default_factory=list)
    ended: bool = False

    @classmethod
    def of(cls, task: Json) -> TaskProgress:
        subtasks = {
            s["id"]: SubtaskState(
                id=s["id"],
                name=s["name"],
                status=s["status"],
                parallel_idx=s.get("parallelIdx", -1),
                upstreams=list(s.get("upstreams", [])),
                error_message=s.get("errorMessage"),
            )
            for s in task.get("subtasks", [])
        }
        progress = cls(
            id=task["id"],
            name=task["name"],
            status=task["status"],
            prohibit_rollback=bool(task.get("prohibitRollback", False)),
            subtasks=subtasks,
        )
        progress.ranks = _ranks(subtasks)
        return progress

    def apply(self, event: ServerSentEvent) -> None:
        data: Any = json.loads(event.data) if event.data else {}
        if event.event == "task":
            self.status = data.get("status", self.status)
            for subtask in data.get("subtasks", []):
                self._update(subtask)
        elif event.event == "subtask":
            self._update(data)
        elif event.event == "log":
            known = self.subtasks.get(data.get("subtaskId"))
            if known is not None:
                known.last_line = str(data.get("line", ""))
        elif event.event == "end":
            self.status = data.get("status", self.status)
            self.ended = True
        elif event.event == "error":
            raise CliError(
                f"the task's stream was refused: {data.get('message')} ({data.get('code')})",
                ExitCode.TASK_FAILED,
            )

    def _update(self, data: Json) -> None:
        known = self.subtasks.get(data.get("id", -1))
        if known is not None:
            known.status = data.get("status", known.status)
            known.error_message = data.get("errorMessage", known.error_message)

    def _stage_members(self) -> list[list[SubtaskState]]:
        """The DAG's ranks without the Wait nodes, which join fan-outs and do nothing."""
        members = (
            [self.subtasks[i] for i in ids if self.subtasks[i].name != WAIT_NODE]
            for ids in self.ranks
        )
        return [subtasks for subtasks in members if subtasks]

    def stage_numbers(self) -> dict[int, int]:
        """Each subtask's stage (1-based) as `stages()` numbers them; Wait nodes have none."""
        return {
            subtask.id: number
            for number, subtasks in enumerate(self._stage_members(), start=1)
            for subtask in subtasks
        }

    def stages(self) -> list[Stage]:
        shown: list[Stage] = []
        for number, subtasks in enumerate(self._stage_members(), start=1):
            names = list(dict.fromkeys(s.name for s in subtasks))
            label = names[0] if len(names) == 1 else ", ".join(names)
            if len(subtasks) > 1:
                label += f" x{len(subtasks)}"
            shown.append(Stage(number, label, Counter(s.status for s in subtasks), len(subtasks)))
        return shown

    def running(self) -> list[SubtaskState]:
        return [s for s in self.subtasks.values() if s.status in ACTIVE]

    def failed(self) -> list[SubtaskState]:
        return [s for s in self.subtasks.values() if s.status == "FAILED"]

    def waiting_for(self) -> str:
        """The running subtasks, by name and the last line each logged."""
        running = self.running()
        if not running:
            return "waiting for the next subtask to start"
        shown = []
        for subtask in running[:2]:
            where = f" #{subtask.parallel_idx}" if subtask.parallel_idx >= 0 else ""
            said = LOG_TIME.sub("", subtask.last_line.strip())
            line = f": {said}" if said else ""
            shown.append(f"{subtask.name}{where}{line}")
        more = f" (+{len(running) - 2} more)" if len(running) > 2 else ""
        return "; ".join(shown) + more


def _ranks(subtasks: dict[int, SubtaskState]) -> list[list[int]]:
    """Subtask ids grouped by their longest distance from a subtask with no upstream."""
    rank: dict[int, int] = {}

    def of(subtask_id: int) -> int:
        # Iterative, so that a deep DAG never hits the recursion limit.
        stack = [subtask_id]
        while stack:
            current = stack[-1]
            pending = [u for u in subtasks[current].upstreams if u in subtasks and u not in rank]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            ups = [rank[u] for u in subtasks[current].upstreams if u in subtasks]
            rank[current] = 1 + max(ups) if ups else 0
        return rank[subtask_id]

    grouped: dict[int, list[int]] = {}
    for subtask_id in sorted(subtasks):
        grouped.setdefault(of(subtask_id), []).append(subtask_id)
    return [grouped[r] for r in sorted(grouped)]


class Reporter(ABC):
    """Shows a task's progress while it is followed (on stderr)."""

    @abstractmethod
    def update(self, progress: TaskProgress) -> None: ...

    def close(self) -> None:
        return None


async def follow(client: ApiClient, task_id: int, reporter: Reporter) -> Json:
    """Follows the task until its stream ends; answers the final task. Reconnects a broken
    stream, resuming after the last log line it had."""
    path = f"/api/v2/tasks/instances/{task_id}"
    progress = TaskProgress.of(await client.get(path))
    reporter.update(progress)
    last_event_id: str | None = None
    broken = 0
    try:
        while not progress.ended:
            why = ""
            try:
                # aclosing: leaving the loop early closes the stream's connection at once.
                stream = client.events(path + "/stream", last_event_id=last_event_id)
                async with aclosing(stream) as events:
                    async for event in events:
                        last_event_id = event.id or last_event_id
                        progress.apply(event)
                        reporter.update(progress)
                        broken = 0
                        if progress.ended:
                            break
                    else:
                        why = "the stream closed before the task ended"
            except httpx.HTTPError as error:
                why = str(error) or type(error).__name__
            if not progress.ended:
                broken += 1
                if broken > RECONNECTS:
                    raise CliError(
                        f"lost the task's stream {RECONNECTS} times in a row: {why}",
                        ExitCode.TASK_FAILED,
                    )
                await asyncio.sleep(1.0)
        final: Json = await client.get(path)
        reporter.update(TaskProgress.of(final))
        return final
    finally:
        reporter.close()
