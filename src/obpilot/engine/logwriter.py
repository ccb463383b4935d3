"""Handlers' log lines, written to subtask_log as they come (a short transaction per
batch), so a running subtask's log can be read while it runs. A finishing run takes its
lines that are still waiting, to write them with its final transition."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError

from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine.notifier import notify_after_commit
from obpilot.logging import get_logger

log = get_logger(__name__)


class LogWriter:
    COALESCE_SECONDS = 0.05

    def __init__(self, database: Database) -> None:
        self.database = database
        self.pending: list[repo.LogLine] = []
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()  # one batch on its way at a time
        self.closed = False
        self._writing: set[int] = set()  # subtasks with lines in the batch on its way
        self._written = asyncio.Event()

    def add(self, line: repo.LogLine) -> None:
        self.pending.append(line)
        self.ready.set()

    async def take(self, subtask_id: int) -> list[repo.LogLine]:
        """A finishing run's unwritten lines (written with its final transition instead),
        once the batch on its way, if it holds earlier lines of the run, is written: the log
        keeps its order. Other runs' batches do not hold it up."""
        while subtask_id in self._writing:
            await self._written.wait()
        mine = [line for line in self.pending if line.subtask_id == subtask_id]
        self.pending = [line for line in self.pending if line.subtask_id != subtask_id]
        return mine

    async def run(self) -> None:
        while not self.closed or self.pending:
            await self.ready.wait()
            await asyncio.sleep(self.COALESCE_SECONDS)
            self.ready.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            batch, self.pending = self.pending, []
            if not batch:
                return
            self._writing = {line.subtask_id for line in batch}
            self._written.clear()
            try:
                async with self.database.transaction(write=True) as session:
                    await repo.insert_log_lines(session, batch)
                    notify_after_commit(session, tasks={line.task_id for line in batch})
                failed = False
            except DBAPIError:
                log.warning("writing subtask log lines failed; will retry", exc_info=True)
                self.pending = batch + self.pending  # or written with their runs' ends
                failed = True
            finally:
                self._writing = set()
                self._written.set()
            if failed:
                self.ready.set()
                await asyncio.sleep(0.5)  # the lock held: the next batch waits too

    async def close(self) -> None:
        self.closed = True
        self.ready.set()
        await self.flush()
