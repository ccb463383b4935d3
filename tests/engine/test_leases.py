"""Leases: a dead executor's subtasks reaped (resumed or failed), a live lease left alone,
and a worker that lost its lease stopping."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import SubtaskInstance, retry_subtask
from obpilot.engine import repository as repo
from tests.engine.helpers import ctx, running
from tests.support.engine_tasks import (
    CATALOG,
    CRASH,
    CRASH_RESUMABLE,
    Stubborn,
    log_of,
    one,
    read_records,
    running_engine,
    snapshot,
    submit_task,
    subtask_named,
    wait_for,
    wait_task,
)


async def _claim_as_ghost(database: Database, task_id: int, *, expired: bool) -> SubtaskInstance:
    """Marks the task's second subtask RUNNING under a dead executor's lease."""
    async with database.transaction(write=True) as session:
        subtasks = await repo.list_subtasks(session, task_id)
        target = subtasks[1]
        deadline = utcnow() - timedelta(seconds=5) if expired else utcnow() + timedelta(hours=1)
        await session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.id == subtasks[0].id)
            .values(status="SUCCESSFUL")
        )
        await session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.id == target.id)
            .values(
                status="RUNNING",
                executor="ghost:1",
                lease_token="f" * 32,
                lease_deadline=deadline,
                upstreams_left=0,
                start_time=utcnow(),
            )
        )
        return target


async def test_an_executor_lost_fails_a_subtask_that_cannot_resume_and_retry_clears(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database, workers=0):  # only the reaper
        task_id = await submit_task(any_database, CRASH, ctx(record_file, sleep_seconds=0))
        await asyncio.sleep(0.2)
        ghost = await _claim_as_ghost(any_database, task_id, expired=True)
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
    lost = subtask_named(subtasks, "Sleep")
    assert lost.id == ghost.id
    assert lost.error_code == "TSK10015"
    assert "executor ghost:1 lost" in (lost.error_message or "")
    assert "retry it" in (await log_of(any_database, lost.id))[-1]
    async with running_engine(any_database):
        async with any_database.transaction(write=True) as session:
            await retry_subtask(
                session, task_id=task_id, subtask_id=lost.id, actor="admin", catalog=CATALOG
            )
        _, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert subtask_named(subtasks, "Sleep").run_time == 2
    assert subtask_named(subtasks, "Sleep").error_message is None


async def test_an_executor_lost_makes_a_resumable_subtask_ready_again(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database, workers=0):
        task_id = await submit_task(
            any_database, CRASH_RESUMABLE, ctx(record_file, sleep_seconds=0)
        )
        await asyncio.sleep(0.2)
        await _claim_as_ghost(any_database, task_id, expired=True)
        _, subtasks = await wait_for(
            any_database, task_id, lambda _t, s: s[1].status == "READY", what="READY again"
        )
    assert subtasks[1].run_time == 2
    assert "can resume" in (await log_of(any_database, subtasks[1].id))[-1]
    async with running_engine(any_database):
        await wait_task(any_database, task_id, "SUCCESSFUL")


async def test_a_live_lease_is_not_reaped(any_database: Database, record_file: Path) -> None:
    async with running_engine(any_database, workers=0) as engine:
        task_id = await submit_task(any_database, CRASH, ctx(record_file))
        await asyncio.sleep(0.2)
        await _claim_as_ghost(any_database, task_id, expired=False)
        assert await engine.reap() == 0
    _, subtasks = await snapshot(any_database, task_id)
    assert (subtasks[1].status, subtasks[1].executor) == ("RUNNING", "ghost:1")


async def test_a_worker_that_lost_its_lease_stops(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Stubborn), ctx(record_file))
        _, subtasks = await wait_for(any_database, task_id, running("Stubborn"))
        async with any_database.transaction(write=True) as session:  # another owner now
            await session.execute(
                update(SubtaskInstance)
                .where(SubtaskInstance.id == subtasks[0].id)
                .values(lease_token="e" * 32, executor="other:1")
            )
        for _ in range(100):
            if "hard-cancelled" in [r["event"] for r in read_records(record_file)]:
                break
            await asyncio.sleep(0.05)
    assert "hard-cancelled" in [r["event"] for r in read_records(record_file)]
    _, subtasks = await snapshot(any_database, task_id)
    assert (subtasks[0].status, subtasks[0].executor) == ("RUNNING", "other:1")
