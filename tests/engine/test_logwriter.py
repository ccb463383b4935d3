"""A running subtask's log lines reach the metadb while it runs."""

from __future__ import annotations

import asyncio

from obpilot.db.engine import Database
from obpilot.engine import Context
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
