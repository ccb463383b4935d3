"""OCP's operations on every metadb: task retry and rollback, subtask retry and skip, what
they refuse, and submit in the caller's transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from obpilot.db.engine import Database
from obpilot.engine import (
    Context,
    Template,
    cancel_subtask,
    parallel,
    retry_subtask,
    retry_task,
    rollback_task,
    single,
    skip_subtask,
)
from obpilot.engine import repository as repo
from obpilot.errors import (
    SubtaskNotFound,
    SubtaskSkipProhibited,
    TaskNotFound,
    TaskRollbackProhibited,
    TaskStateInvalid,
)
from tests.engine.helpers import ctx, running
from tests.support.engine_tasks import (
    CATALOG,
    BadRollback,
    Broken,
    Flaky,
    Noop,
    Permanent,
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

FLAKY_CHAIN = Template(
    key="test.flaky-chain",
    name="Flaky chain",
    stages=[single(Noop), single(Flaky), single(Noop)],
)


async def test_a_failure_fails_the_task_and_a_task_retry_resumes(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, FLAKY_CHAIN, ctx(record_file))
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
        flaky = subtask_named(subtasks, "Flaky")
        assert flaky.status == "FAILED"
        assert flaky.error_message == "flaky failure on run 1"
        assert subtasks[-1].status == "PENDING"
        assert (await log_of(any_database, flaky.id))[-1].endswith("failed: flaky failure on run 1")
        async with any_database.transaction(write=True) as session:
            retried = await retry_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
            assert (retried.status, retried.operation) == ("RUNNING", "RETRY")
        _task, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    flaky = subtask_named(subtasks, "Flaky")
    assert (flaky.status, flaky.operation, flaky.run_time) == ("SUCCESSFUL", "RETRY", 2)
    assert flaky.error_message is None
    lines = await log_of(any_database, flaky.id)
    assert [line[:7] for line in lines if line.startswith("{")] == ["{EXECUT", "{RETRY}"]
    assert any("retry of task" in line and "admin" in line for line in lines)


async def test_subtask_retry_and_skip(any_database: Database, record_file: Path) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, FLAKY_CHAIN, ctx(record_file, fail_until_run=3))
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
        flaky = subtask_named(subtasks, "Flaky")
        async with any_database.transaction(write=True) as session:
            again = await retry_subtask(
                session, task_id=task_id, subtask_id=flaky.id, actor="admin", catalog=CATALOG
            )
        assert (again.status, again.operation, again.run_time) == ("READY", "RETRY", 2)
        _, subtasks = await wait_for(
            any_database,
            task_id,
            lambda t, s: t.status == "FAILED" and subtask_named(s, "Flaky").run_time == 2,
        )
        async with any_database.transaction(write=True) as session:
            await skip_subtask(
                session, task_id=task_id, subtask_id=flaky.id, actor="admin", catalog=CATALOG
            )
        _task, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    flaky = subtask_named(subtasks, "Flaky")
    assert (flaky.status, flaky.operation) == ("SUCCESSFUL", "SKIP")
    assert subtasks[-1].status == "SUCCESSFUL"
    assert any("skipped by admin" in line for line in await log_of(any_database, flaky.id))


async def test_rollback_walks_back_calling_rollback_handlers(
    any_database: Database, record_file: Path
) -> None:
    template = Template(
        key="test.rollback",
        name="Rollback",
        stages=[single(Noop), parallel(Noop, over="items"), single(Flaky), single(Noop)],
    )
    context = Context.of({"record_file": record_file, "fail_until_run": 99}, {"items": [1, 2]})
    async with running_engine(any_database):
        task_id = await submit_task(any_database, template, context)
        _, before = await wait_task(any_database, task_id, "FAILED")
        async with any_database.transaction(write=True) as session:
            task = await rollback_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
            assert (task.status, task.operation) == ("RUNNING", "ROLLBACK")
        task, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert task.operation == "ROLLBACK"
    assert {s.status for s in subtasks} == {"PENDING"}
    rollbacks = [r["subtask"] for r in read_records(record_file) if r["event"] == "rollback"]
    first, branch_a, branch_b, flaky, _last = (s.id for s in before)
    assert rollbacks[0] == flaky
    assert sorted(rollbacks[1:3]) == [branch_a, branch_b]
    assert rollbacks[3] == first
    assert len(rollbacks) == 4  # the never-run last subtask is not rolled back
    assert all(s.operation == "ROLLBACK" for s in subtasks[:4])
    assert subtasks[4].operation == "EXECUTE"
    assert (await log_of(any_database, flaky))[-1].endswith("rollback finished: undone")


async def test_rollback_is_refused_once_a_prohibiting_subtask_ran(
    any_database: Database, record_file: Path
) -> None:
    template = Template(
        key="test.prohibit", name="Prohibit", stages=[single(Permanent), single(Flaky)]
    )
    async with running_engine(any_database):
        task_id = await submit_task(any_database, template, ctx(record_file, fail_until_run=9))
        await wait_task(any_database, task_id, "FAILED")
        async with any_database.transaction(write=True) as session:
            with pytest.raises(TaskRollbackProhibited, match="Permanent change"):
                await rollback_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
    task, _ = await snapshot(any_database, task_id)
    assert (task.status, task.operation) == ("FAILED", "EXECUTE")


async def test_operations_refuse_wrong_states_and_unknown_ids(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Stubborn), ctx(record_file))
        _, subtasks = await wait_for(any_database, task_id, running("Stubborn"))
        stubborn = subtasks[0].id
        async with any_database.transaction(write=True) as session:
            with pytest.raises(TaskStateInvalid, match=f"task {task_id} in state RUNNING"):
                await retry_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
            with pytest.raises(TaskStateInvalid, match="state RUNNING"):
                await rollback_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
            with pytest.raises(TaskStateInvalid, match=f"subtask {stubborn} in state RUNNING"):
                await skip_subtask(
                    session, task_id=task_id, subtask_id=stubborn, actor="a", catalog=CATALOG
                )
            with pytest.raises(TaskStateInvalid, match=r"RETRY .* state RUNNING"):
                await retry_subtask(
                    session, task_id=task_id, subtask_id=stubborn, actor="a", catalog=CATALOG
                )
            with pytest.raises(TaskNotFound, match="Task 999999 does not exist"):
                await retry_task(session, task_id=999999, actor="admin", catalog=CATALOG)
            with pytest.raises(SubtaskNotFound):
                await cancel_subtask(session, task_id=task_id, subtask_id=999999, actor="a")
        async with any_database.transaction(write=True) as session:
            await cancel_subtask(session, task_id=task_id, subtask_id=stubborn, actor="a")
        await wait_task(any_database, task_id, "FAILED")
        async with any_database.transaction(write=True) as session:
            with pytest.raises(TaskStateInvalid, match=r"CANCEL .* state FAILED"):
                await cancel_subtask(session, task_id=task_id, subtask_id=stubborn, actor="a")

        broken_task = await submit_task(any_database, one(Broken), Context())
        _, subtasks = await wait_task(any_database, broken_task, "FAILED")
    assert subtasks[0].error_message == "RuntimeError: boom"
    async with any_database.transaction(write=True) as session:
        with pytest.raises(SubtaskSkipProhibited, match="cannot be skipped"):
            await skip_subtask(
                session, task_id=broken_task, subtask_id=subtasks[0].id, actor="a", catalog=CATALOG
            )
        with pytest.raises(TaskStateInvalid, match="does not allow retry"):
            await retry_task(session, task_id=broken_task, actor="admin", catalog=CATALOG)


async def test_submit_belongs_to_the_callers_transaction(any_database: Database) -> None:
    from obpilot.engine import submit

    class Abort(Exception):
        pass

    async def submit_then_fail() -> None:
        async with any_database.transaction(write=True) as session:
            await submit(session, one(Noop), Context(), creator_id=1, creator_name="admin")
            raise Abort

    with pytest.raises(Abort):
        await submit_then_fail()
    async with any_database.transaction() as session:
        tasks, total = await repo.page_tasks(
            session, repo.TaskFilter(), offset=0, limit=10, sort=[]
        )
    assert (tasks, total) == ([], 0)


async def test_submit_records_the_executor_it_is_given(database: Database) -> None:
    from obpilot.engine import submit

    async with database.transaction(write=True) as session:
        named = await submit(
            session, one(Noop), Context(), creator_id=1, creator_name="admin", executor="node-a"
        )
        unnamed = await submit(session, one(Noop), Context(), creator_id=1, creator_name="admin")
    assert (named.executor, unnamed.executor) == ("node-a", None)


ROLLBACK_TROUBLE = Template(
    key="test.rollback-trouble",
    name="Rollback trouble",
    stages=[single(Noop), single(BadRollback), single(Flaky)],
)


@pytest.mark.parametrize("recovery", ["skip", "rollback again"])
async def test_a_failed_rollback_is_skipped_or_rolled_back_again(
    any_database: Database, record_file: Path, recovery: str
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(
            any_database, ROLLBACK_TROUBLE, ctx(record_file, fail_until_run=99)
        )
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
        first, bad, flaky = (s.id for s in subtasks)
        async with any_database.transaction(write=True) as session:
            await rollback_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
        task, subtasks = await wait_task(any_database, task_id, "FAILED")
        assert task.operation == "ROLLBACK"
        assert [(s.status, s.operation) for s in subtasks] == [
            ("SUCCESSFUL", "ROLLBACK"),
            ("FAILED", "ROLLBACK"),
            ("PENDING", "ROLLBACK"),
        ]
        async with any_database.transaction(write=True) as session:
            with pytest.raises(TaskStateInvalid, match="operation ROLLBACK"):
                await retry_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
            with pytest.raises(TaskStateInvalid, match="its rollback failed"):
                await retry_subtask(
                    session, task_id=task_id, subtask_id=bad, actor="admin", catalog=CATALOG
                )
        async with any_database.transaction(write=True) as session:
            if recovery == "skip":
                await skip_subtask(
                    session, task_id=task_id, subtask_id=bad, actor="admin", catalog=CATALOG
                )
            else:
                await rollback_task(session, task_id=task_id, actor="admin", catalog=CATALOG)
        task, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert task.operation == "ROLLBACK"
    assert {s.status for s in subtasks} == {"PENDING"}
    expected = "ROLLBACK_SKIP" if recovery == "skip" else "ROLLBACK"
    assert subtasks[1].operation == expected
    rollbacks = [r["subtask"] for r in read_records(record_file) if r["event"] == "rollback"]
    tries_of_bad = 1 if recovery == "skip" else 2
    assert rollbacks == [flaky] + [bad] * tries_of_bad + [first]
