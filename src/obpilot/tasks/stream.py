"""Server-Sent Events that follow one task: its subtasks' status changes and log lines.

The metadb is the source: the stream re-reads the task whenever this process signals a
change (the workers, operations and log writer here do), and at least every
`poll_seconds` for changes made by other instances. Events:

* `task` (first): the task and every subtask's state; again when its status changes;
* `log`: a log line (`subtaskId`, `runTime`, `line`), first the lines written so far, then
  new ones; each carries its `id`, so a reconnecting EventSource (Last-Event-ID) resumes;
* `subtask`: a subtask whose status, operation or run changed;
* `end`: the task is SUCCESSFUL or FAILED with nothing running (unless `follow`).

A `: keep-alive` comment goes out when nothing happened for 15 s.

Streams go through a `StreamHub`: it caps how many one user and the whole instance hold
open, and runs one watcher per followed task, whatever the number of its viewers. The
watcher alone polls the metadb (one cheap look per `poll_seconds`) and wakes the viewers
when something changed; an idle viewer costs nothing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine.models import SubtaskInstance, SubtaskLog, TaskInstance
from obpilot.engine.notifier import NOTIFIER, Signal
from obpilot.engine.states import ACTIVE_SUBTASK_STATUSES, TaskStatus
from obpilot.errors import TooManyRequests

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


class _TaskWatch:
    """The one reader of a followed task: it wakes the task's viewers on this process's
    signals at once, and on other instances' changes when its poll sees them."""

    def __init__(self, database: Database, task_id: int, poll_seconds: float) -> None:
        self.viewers: set[asyncio.Event] = set()
        self._database = database
        self._task_id = task_id
        self._poll_seconds = poll_seconds
        self._signalled = asyncio.Event()
        self._runner = asyncio.create_task(self._run(), name=f"task-stream-watch-{task_id}")

    def signal(self) -> None:
        self._signalled.set()

    def stop(self) -> None:
        self._runner.cancel()

    def _wake(self) -> None:
        for viewer in self.viewers:
            viewer.set()

    async def _run(self) -> None:
        seen: object = None
        while True:
            try:
                await asyncio.wait_for(self._signalled.wait(), self._poll_seconds)
                self._signalled.clear()
                self._wake()
                continue
            except TimeoutError:
                pass
            async with self._database.transaction() as session:
                task = await repo.get_task(session, self._task_id)
                now = (
                    task and (task.status, task.operation, task.version),
                    await repo.subtask_states(session, self._task_id),
                    await repo.max_log_id(session, self._task_id),
                )
            # The first look wakes the viewers too: a change may have come between their
            # first read and this watcher's first poll.
            if now != seen:
                self._wake()
            seen = now


class StreamHub:
    """Admits task streams within the caps and shares one watcher per followed task."""

    def __init__(
        self, database: Database, *, per_user: int, per_instance: int, poll_seconds: float
    ) -> None:
        self.database = database
        self.per_user = per_user
        self.per_instance = per_instance
        self.poll_seconds = poll_seconds
        self._by_user: Counter[int] = Counter()
        self._watches: dict[int, _TaskWatch] = {}
        self._subscription: int | None = None

    @property
    def open_streams(self) -> int:
        return sum(self._by_user.values())

    @property
    def watched_tasks(self) -> int:
        """Tasks with at least one viewer: one watcher, and one poll, each."""
        return len(self._watches)

    def check_room(self, user_id: int) -> None:
        """Refuses a new stream when the user's or the instance's cap is reached."""
        if self._by_user[user_id] >= self.per_user:
            raise TooManyRequests(
                f"You already follow {self.per_user} task stream(s), the most one user may "
                "hold open; close one first"
            )
        if self.open_streams >= self.per_instance:
            raise TooManyRequests(
                f"This obpilot instance serves {self.per_instance} task streams already; "
                "try again later"
            )

    def _on_signal(self, signal: Signal) -> None:
        for task_id in signal.tasks:
            watch = self._watches.get(task_id)
            if watch is not None:
                watch.signal()

    def _join(self, task_id: int, user_id: int, viewer: asyncio.Event) -> None:
        self.check_room(user_id)
        self._by_user[user_id] += 1
        if self._subscription is None:
            self._subscription = NOTIFIER.subscribe(self._on_signal)
        watch = self._watches.get(task_id)
        if watch is None:
            watch = self._watches[task_id] = _TaskWatch(self.database, task_id, self.poll_seconds)
        watch.viewers.add(viewer)

    def _leave(self, task_id: int, user_id: int, viewer: asyncio.Event) -> None:
        self._by_user[user_id] -= 1
        if self._by_user[user_id] <= 0:
            del self._by_user[user_id]
        watch = self._watches.get(task_id)
        if watch is not None:
            watch.viewers.discard(viewer)
            if not watch.viewers:
                watch.stop()
                del self._watches[task_id]
        if not self._watches and self._subscription is not None:
            NOTIFIER.unsubscribe(self._subscription)
            self._subscription = None

    async def follow(
        self, task_id: int, *, user_id: int, follow: bool = False, after_log_id: int = 0
    ) -> AsyncIterator[str]:
        """The task's events for one viewer; its place is taken when the stream starts
        (the route checked for room just before) and given back when it ends."""
        changed = asyncio.Event()
        try:
            self._join(task_id, user_id, changed)
        except TooManyRequests as refused:
            yield sse("error", {"code": refused.code, "message": refused.message})
            return
        try:
            async for event in follow_task(
                self.database, task_id, changed, follow=follow, after_log_id=after_log_id
            ):
                yield event
        finally:
            self._leave(task_id, user_id, changed)

    def close(self) -> None:
        for watch in self._watches.values():
            watch.stop()


async def follow_task(
    database: Database,
    task_id: int,
    changed: asyncio.Event,
    *,
    follow: bool = False,
    after_log_id: int = 0,
) -> AsyncIterator[str]:
    """The task's events: first the task, then every log line after `after_log_id` so far,
    then changes as they happen (each time `changed` is set)."""
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
    while True:
        try:
            await asyncio.wait_for(changed.wait(), KEEP_ALIVE_SECONDS)
            await asyncio.sleep(COALESCE_SECONDS)  # let a burst of changes settle
        except TimeoutError:
            yield ": keep-alive\n\n"
            continue
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
        if _ended(task, known) and not follow:
            yield sse("end", _task(task))
            return


def _ended(task: TaskInstance, known: dict[int, tuple[str, str, int]]) -> bool:
    return task.status != TaskStatus.RUNNING and not any(s in ACTIVE for s, _, _ in known.values())
