"""The dispatcher on every metadb: shutdown drains, two engines claim each subtask once,
and claims pass over rows another transaction locked."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from obpilot.db.engine import Database
from obpilot.engine import Context, SubtaskInstance, Template, parallel, single
from tests.engine.helpers import ctx, running
from tests.support.engine_tasks import (
    CRASH,
    CRASH_RESUMABLE,
    Gate,
    Noop,
    Sleep,
    log_of,
    one,
    read_records,
    running_engine,
    snapshot,
    submit_task,
    wait_for,
    wait_task,
)


async def test_shutdown_hands_back_or_fails_what_it_holds(
    any_database: Database, record_file: Path
) -> None:
    slow = ctx(record_file, sleep_seconds=60)
    engine_cm = running_engine(any_database, drain_seconds=0.2)
    async with engine_cm:
        resumable = await submit_task(any_database, CRASH_RESUMABLE, slow)
        plain = await submit_task(any_database, CRASH, slow)
        for task_id in (resumable, plain):
            await wait_for(
                any_database, task_id, lambda _t, s: s[1].status == "RUNNING", what="running"
            )
    _, subtasks = await snapshot(any_database, resumable)
    assert (subtasks[1].status, subtasks[1].run_time) == ("READY", 2)
    assert "handed back" in (await log_of(any_database, subtasks[1].id))[-1]
    task, subtasks = await snapshot(any_database, plain)
    assert (subtasks[1].status, subtasks[1].error_code) == ("FAILED", "TSK10013")
    assert task.status == "FAILED"


async def test_shutdown_lets_running_subtasks_finish(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database, drain_seconds=20):
        task_id = await submit_task(any_database, one(Sleep), ctx(record_file, sleep_seconds=1))
        await wait_for(any_database, task_id, running("Sleep"))
    task, _ = await snapshot(any_database, task_id)
    assert task.status == "SUCCESSFUL"


async def test_two_engines_claim_every_subtask_exactly_once(
    any_database: Database, record_file: Path
) -> None:
    template = Template(
        key="test.wide", name="Wide", stages=[parallel(Noop, over="items"), single(Noop)]
    )
    context = Context.of({"record_file": record_file}, {"items": list(range(40))})
    async with (
        running_engine(any_database, executor="node-a", workers=3),
        running_engine(any_database, executor="node-b", workers=3),
    ):
        task_ids = [await submit_task(any_database, template, context) for _ in range(3)]
        for task_id in task_ids:
            await wait_task(any_database, task_id, "SUCCESSFUL", within=60)
    starts = [r["subtask"] for r in read_records(record_file) if r["event"] == "start"]
    assert len(starts) == len(set(starts)) == 3 * 41


async def test_runs_of_one_task_that_end_at_once_settle_it(
    any_database: Database, tmp_path: Path
) -> None:
    """Each of the ending runs sees the others ending too: one of them must settle the
    task, not each leave it to another."""
    template = Template(key="test.gates", name="Gates", stages=[parallel(Gate, over="items")])
    gate = tmp_path / "gate"
    async with running_engine(any_database, workers=4):
        task_ids = [
            await submit_task(
                any_database, template, Context.of({"gate_file": gate}, {"items": range(4)})
            )
            for _ in range(3)
        ]
        gate.touch()
        for task_id in task_ids:
            await wait_task(any_database, task_id, "SUCCESSFUL")


EXPECTED_CLAIM_MODE = {
    "sqlite": "immediate",
    "postgresql": "skip_locked",
    "mariadb": "skip_locked",
    "seekdb": "window",
}


async def test_claims_pass_over_rows_another_transaction_locked(
    any_database: Database, dialect: str
) -> None:
    """Where rows can be locked (not SQLite: one writer at a time), a claim takes the READY
    subtasks nobody holds, at once, even when the first ones are locked; on seekdb that
    needs SKIP LOCKED without LIMIT."""
    async with running_engine(any_database, workers=0) as engine:
        assert engine.claim_mode == EXPECTED_CLAIM_MODE[dialect]
        if dialect == "sqlite":
            return
        template = Template(key="test.locked", name="L", stages=[parallel(Noop, over="items")])
        task_id = await submit_task(any_database, template, Context.of(lists={"items": range(5)}))
        _, subtasks = await snapshot(any_database, task_id)
        first_two = [s.id for s in subtasks[:2]]
        async with any_database.transaction() as holder:
            for subtask_id in first_two:  # one primary-key lookup each: locks only that row
                locked = await holder.scalar(
                    select(SubtaskInstance.id)
                    .where(SubtaskInstance.id == subtask_id)
                    .with_for_update()
                )
                assert locked == subtask_id
            runs = await asyncio.wait_for(engine._claim(2, check_first=False), 10)
        assert sorted(run.subtask.id for run in runs) == [s.id for s in subtasks[2:4]]
