"""A running subtask's log lines reach the metadb while it runs, in order."""

from __future__ import annotations

import asyncio

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import Context
from obpilot.engine import repository as repo
from obpilot.engine.logwriter import LogWriter
from obpilot.engine.repository import LogLine
from tests.engine.helpers import running
from tests.support.engine_tasks import (
    Chatty,
    log_of,
    one,
    running_engine,
    snapshot,
    submit_task,
    wait_for,
    wait_task,
)


async def test_log_lines_are_written_while_the_subtask_runs(any_database: Database) -> None:
    context = Context.of({"log_lines": 20, "line_interval": 0.1})
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Chatty), context)
        _, subtasks = await wait_for(any_database, task_id, running("Chatty"))
        seen: list[str] = []
        for _ in range(100):
            seen = await log_of(any_database, subtasks[0].id)
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.05)
        _, during = await snapshot(any_database, task_id)
        assert during[0].status == "RUNNING"
        assert any(line.endswith("line 0") for line in seen)
        await wait_task(any_database, task_id, "SUCCESSFUL")
    assert len(await log_of(any_database, subtasks[0].id)) == 22  # header, 20 lines, end


async def test_a_finishing_run_takes_its_waiting_lines_after_those_on_their_way(
    database: Database,
) -> None:
    """The log keeps its order: a run's lines in the batch being written are written
    before the run takes the rest; another run's batch does not hold it up."""
    writer = LogWriter(database)
    now = utcnow()
    writer.add(LogLine(1, 10, 1, "first line of 10", now))
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)  # the batch with 10's first line is on its way
    writer.add(LogLine(1, 10, 1, "second line of 10", now))
    writer.add(LogLine(1, 11, 1, "a line of 11", now))
    assert [line.content for line in await writer.take(11)] == ["a line of 11"]
    assert not flushing.done()  # 11 did not wait for the batch
    assert [line.content for line in await writer.take(10)] == ["second line of 10"]
    assert flushing.done()  # 10 did
    async with database.transaction() as session:
        assert await repo.subtask_log(session, 10) == ["first line of 10"]
