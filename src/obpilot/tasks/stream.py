"""Server-Sent Events that follow one task: its subtasks' status changes and log lines.

The metadb is the source: the stream re-reads the task whenever this process signals a
change (the workers, operations and log writer here do), and at least every
`poll_seconds` for changes made by other instances. Events:

* `task` (first): the task and every subtask's state; again when its status changes;
* `log`: a log line (`subtaskId`, `runTime`, `line`), first the lines written so far, then
  new ones; each carries its `id`, so a reconnecting EventSource (Last-Event-ID) resumes;
* `subtask`: a subtask whose status, operation or run changed;
* `end`: the task is SUCCESSFUL or FAILED with nothing running (unless `follow`).

A `: keep-alive` comment goes out when nothing happened for 15 s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine.models import SubtaskInstance, SubtaskLog, TaskInstance
from obpilot.engine.notifier import NOTIFIER, Signal
from obpilot.engine.states import ACTIVE_SUBTASK_STATUSES, TaskStatus

KEEP_ALIVE_SECONDS = 15.0
COALESCE_SECONDS = 0.02
LOG_BATCH = 2000
ACTIVE = {s.value for s in ACTIVE_SUBTASK_STATUSES}


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _subtask(row: SubtaskInstance) -> dict[str, Any]:
    return {
        "taskId": row.task_id,
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "operation": row.operation,
        "runTime": row.run_time,
        "executor": row.executor,
        "parallelIdx": row.parallel_idx,
        "errorMessage": row.error_message,
    }


def _task(task: TaskInstance) -> dict[str, Any]:
    return {"id": task.id, "name": task.name, "status": task.status, "operation": task.operation}


def _log_event(line: SubtaskLog) -> str:
    data = {
        "taskId": line.task_id,
        "subtaskId": line.subtask_id,
        "runTime": line.run_time,
        "line": line.content,
    }
    # The id lets a reconnecting EventSource resume after the last line it got.
    return f"id: {line.id}\n" + sse("log", data)


async def follow_task(
    database: Database,
    task_id: int,
    *,
    follow: bool = False,
    poll_seconds: float = 1.0,
    after_log_id: int = 0,
) -> AsyncIterator[str]:
    """The task's events: first the task, then every log line after `after_log_id` so far,
    then changes as they happen."""
    changed = asyncio.Event()

    def on_signal(signal: Signal) -> None:
        if task_id in signal.tasks:
            changed.set()

    handle = NOTIFIER.subscribe(on_signal)
    try:
        async with database.transaction() as session:
            task = await repo.get_task(session, task_id)
            if task is None:
                return
            subtasks = await repo.list_subtasks(session, task_id)
        known: dict[int, tuple[str, str, int]] = {
            s.id: (s.status, s.operation, s.version) for s in subtasks
        }
        task_state = (task.status, task.operation, task.version)
        yield sse("task", {**_task(task), "subtasks": [_subtask(s) for s in subtasks]})
        seen_log: dict[int, int] = {}
        last = after_log_id
        while True:  # the log so far
            async with database.transaction() as session:
                lines = await repo.log_rows_after(session, task_id, last, limit=LOG_BATCH)
            for line in lines:
                seen_log[line.subtask_id] = last = line.id
                yield _log_event(line)
            if len(lines) < LOG_BATCH:
                break
        start_log = last
        watched = {s.id for s in subtasks if s.status in ACTIVE}
        if _ended(task, known) and not follow:
            yield sse("end", _task(task))
            return
        quiet = 0.0
        while True:
            try:
                await asyncio.wait_for(changed.wait(), poll_seconds)
                await asyncio.sleep(COALESCE_SECONDS)  # let a burst of changes settle
            except TimeoutError:
                quiet += poll_seconds
            changed.clear()
            events: list[str] = []
            async with database.transaction() as session:
                task = await repo.get_task(session, task_id)
                if task is None:
                    return
                states = await repo.subtask_states(session, task_id)
                moved = [i for i, s, o, v in states if known.get(i) != (s, o, v)]
                for row in await repo.subtasks_by_ids(session, moved):
                    known[row.id] = (row.status, row.operation, row.version)
                    events.append(sse("subtask", _subtask(row)))
                active_now = {i for i, s, _, _ in states if s in ACTIVE}
                # Only subtasks that run, ran or changed since the last look write lines.
                candidates = watched | active_now | set(moved)
                watched = active_now
                if candidates:
                    floor = min(seen_log.get(i, start_log) for i in candidates)
                    lines = await repo.log_rows_after(session, task_id, floor, limit=LOG_BATCH)
                    if len(lines) == LOG_BATCH:  # more to read: come back at once
                        watched |= candidates
                        changed.set()
                    for line in lines:
                        if line.id > seen_log.get(line.subtask_id, start_log):
                            seen_log[line.subtask_id] = line.id
                            events.append(_log_event(line))
            if (task.status, task.operation, task.version) != task_state:
                task_state = (task.status, task.operation, task.version)
                events.append(sse("task", _task(task)))
            for event in events:
                yield event
            if events:
                quiet = 0.0
            elif quiet >= KEEP_ALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"
            if _ended(task, known) and not follow:
                yield sse("end", _task(task))
                return
    finally:
        NOTIFIER.unsubscribe(handle)


def _ended(task: TaskInstance, known: dict[int, tuple[str, str, int]]) -> bool:
    return task.status != TaskStatus.RUNNING and not any(s in ACTIVE for s, _, _ in known.values())
