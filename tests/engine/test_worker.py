"""The engine running DAGs on every metadb: progress, failure, OCP's operations, cancel,
timeouts, outputs, logs, lost executors, lost leases, shutdown and concurrent claims."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import (
    Context,
    SubtaskInstance,
    SubtaskStatus,
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
from tests.support.engine_tasks import (
    CRASH,
    CRASH_RESUMABLE,
    SECRET_BOX,
    SEED_STOP,
    BadRollback,
    Broken,
    Chatty,
    Cooperative,
    Flaky,
    Noop,
    Permanent,
    Publisher,
    Quick,
    Reader,
    Sleep,
    Stubborn,
    log_of,
    one,
    read_records,
    running_engine,
    seed_context,
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


def ctx(record_file: Path, **strings: object) -> Context:
    return Context.of({"record_file": record_file, **strings})


def running(name: str):  # type: ignore[no-untyped-def]
    return lambda _task, subtasks: subtask_named(subtasks, name).status == "RUNNING"


async def test_seed_dag_runs_in_order_to_successful(any_database: Database, tmp_path: Path) -> None:
    record_file = tmp_path / "runs.jsonl"
    context = seed_context().merged(Context.of({"record_file": record_file}))
    async with running_engine(any_database):
        task_id = await submit_task(any_database, SEED_STOP, context)
        task, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert task.operation == "EXECUTE"
    assert task.finish_time is not None
    assert {s.status for s in subtasks} == {"SUCCESSFUL"}
    handlers = [s for s in subtasks if s.name != "Wait node"]
    starts = [r["subtask"] for r in read_records(record_file) if r["event"] == "start"]
    assert starts == [s.id for s in handlers]  # chain order, each exactly once
    for subtask in subtasks:
        lines = await log_of(any_database, subtask.id)
        assert lines[0].startswith("{EXECUTE}{"), lines
        assert subtask.executor == "test-node"
    wait = next(s for s in subtasks if s.name == "Wait node")
    assert "joined" in (await log_of(any_database, wait.id))[-1]


async def test_parallel_branches_each_run_once(any_database: Database, tmp_path: Path) -> None:
    record_file = tmp_path / "runs.jsonl"
    context = seed_context(zones=2, servers_per_zone=3).merged(
        Context.of({"record_file": record_file})
    )
    async with running_engine(any_database):
        task_id = await submit_task(any_database, SEED_STOP, context)
        _, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    starts = [r["subtask"] for r in read_records(record_file) if r["event"] == "start"]
    assert sorted(starts) == sorted(s.id for s in subtasks if s.name != "Wait node")
    stops = [s for s in subtasks if s.name == "Stop observer process"]
    assert sorted(s.parallel_idx for s in stops) == list(range(6))


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
            retried = await retry_task(session, task_id=task_id, actor="admin")
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
                session, task_id=task_id, subtask_id=flaky.id, actor="admin"
            )
        assert (again.status, again.operation, again.run_time) == ("READY", "RETRY", 2)
        _, subtasks = await wait_for(
            any_database,
            task_id,
            lambda t, s: t.status == "FAILED" and subtask_named(s, "Flaky").run_time == 2,
        )
        async with any_database.transaction(write=True) as session:
            await skip_subtask(session, task_id=task_id, subtask_id=flaky.id, actor="admin")
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
            task = await rollback_task(session, task_id=task_id, actor="admin")
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
                await rollback_task(session, task_id=task_id, actor="admin")
    task, _ = await snapshot(any_database, task_id)
    assert (task.status, task.operation) == ("FAILED", "EXECUTE")


async def test_cancel_is_cooperative_first(any_database: Database, record_file: Path) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Cooperative), ctx(record_file))
        _, subtasks = await wait_for(any_database, task_id, running("Cooperative"))
        async with any_database.transaction(write=True) as session:
            await cancel_subtask(session, task_id=task_id, subtask_id=subtasks[0].id, actor="admin")
        _, subtasks = await snapshot(any_database, task_id)
        assert subtasks[0].status in ("CANCELING", "FAILED")
        _task, subtasks = await wait_task(any_database, task_id, "FAILED")
    assert subtasks[0].error_code == "TSK10014"
    assert "noticed-cancel" in [r["event"] for r in read_records(record_file)]
    lines = await log_of(any_database, subtasks[0].id)
    assert any("cancel requested by admin" in line for line in lines)
    assert "TSK10014" in lines[-1]


async def test_cancel_stops_a_handler_that_ignores_it(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Stubborn), ctx(record_file))
        _, subtasks = await wait_for(any_database, task_id, running("Stubborn"))
        async with any_database.transaction(write=True) as session:
            await cancel_subtask(session, task_id=task_id, subtask_id=subtasks[0].id, actor="admin")
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
    assert subtasks[0].error_code == "TSK10014"
    assert "hard-cancelled" in [r["event"] for r in read_records(record_file)]


async def test_a_timeout_fails_the_subtask_with_tsk10012(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Quick), ctx(record_file))
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
    assert subtasks[0].error_code == "TSK10012"
    assert "timed out after 1 s (TSK10012)" in (await log_of(any_database, subtasks[0].id))[-1]


async def test_outputs_reach_later_stages(any_database: Database) -> None:
    template = Template(
        key="test.outputs",
        name="Outputs",
        stages=[parallel(Publisher, over="items"), single(Reader)],
    )
    context = Context.of({"root_password": "hunter2"}, {"items": ["a", "b"]})
    async with running_engine(any_database):
        async with any_database.transaction(write=True) as session:
            from obpilot.engine import submit

            task = await submit(
                session,
                template,
                context,
                creator_id=1,
                creator_name="admin",
                secret_box=SECRET_BOX,
            )
        _, subtasks = await wait_task(any_database, task.id, "SUCCESSFUL")
    lines = await log_of(any_database, subtasks[-1].id)
    saw = next(line for line in lines if " saw " in line)
    assert '"published_0": "value from a"' in saw
    assert '"published_1": "value from b"' in saw
    assert '"shared": "written by 1"' in saw  # branch order: the later branch wins
    assert any(line.endswith("numbers 1,2,3") for line in lines)
    assert any(line.endswith("password is ******") for line in lines)
    assert not any("hunter2" in line for line in lines)
    async with any_database.transaction() as session:
        stored = await repo.get_task(session, task.id)
    assert stored is not None
    assert "hunter2" not in stored.context


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
            await retry_subtask(session, task_id=task_id, subtask_id=lost.id, actor="admin")
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


async def test_an_unregistered_class_fails_its_subtask(
    any_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obpilot.engine import subtask as subtask_module

    monkeypatch.delitem(subtask_module._REGISTRY, Broken.class_name)
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Broken), Context())
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
    assert "no subtask class" in (subtasks[0].error_message or "")


async def test_operations_refuse_wrong_states_and_unknown_ids(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Stubborn), ctx(record_file))
        _, subtasks = await wait_for(any_database, task_id, running("Stubborn"))
        stubborn = subtasks[0].id
        async with any_database.transaction(write=True) as session:
            with pytest.raises(TaskStateInvalid, match=f"task {task_id} in state RUNNING"):
                await retry_task(session, task_id=task_id, actor="admin")
            with pytest.raises(TaskStateInvalid, match="state RUNNING"):
                await rollback_task(session, task_id=task_id, actor="admin")
            with pytest.raises(TaskStateInvalid, match=f"subtask {stubborn} in state RUNNING"):
                await skip_subtask(session, task_id=task_id, subtask_id=stubborn, actor="a")
            with pytest.raises(TaskStateInvalid, match=r"RETRY .* state RUNNING"):
                await retry_subtask(session, task_id=task_id, subtask_id=stubborn, actor="a")
            with pytest.raises(TaskNotFound, match="Task 999999 does not exist"):
                await retry_task(session, task_id=999999, actor="admin")
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
            await skip_subtask(session, task_id=broken_task, subtask_id=subtasks[0].id, actor="a")
        with pytest.raises(TaskStateInvalid, match="does not allow retry"):
            await retry_task(session, task_id=broken_task, actor="admin")


async def test_the_end_hook_runs_in_the_ending_transaction(any_database: Database) -> None:
    ended: list[tuple[str, str]] = []

    async def on_end(session: object, task: object) -> None:
        ended.append((task.status, task.operation))  # type: ignore[attr-defined]
        raise RuntimeError("a failing hook does not block the task")

    template = Template(key="test.hook", name="Hook", stages=[single(Noop)], on_end=on_end)
    async with running_engine(any_database):
        task_id = await submit_task(any_database, template, Context())
        await wait_task(any_database, task_id, "SUCCESSFUL")
    assert ended == [("SUCCESSFUL", "EXECUTE")]


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
        assert sorted(run.subtask_id for run in runs) == [s.id for s in subtasks[2:4]]


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
            await rollback_task(session, task_id=task_id, actor="admin")
        task, subtasks = await wait_task(any_database, task_id, "FAILED")
        assert task.operation == "ROLLBACK"
        assert [(s.status, s.operation) for s in subtasks] == [
            ("SUCCESSFUL", "ROLLBACK"),
            ("FAILED", "ROLLBACK"),
            ("PENDING", "ROLLBACK"),
        ]
        async with any_database.transaction(write=True) as session:
            with pytest.raises(TaskStateInvalid, match="operation ROLLBACK"):
                await retry_task(session, task_id=task_id, actor="admin")
            with pytest.raises(TaskStateInvalid, match="its rollback failed"):
                await retry_subtask(session, task_id=task_id, subtask_id=bad, actor="admin")
        async with any_database.transaction(write=True) as session:
            if recovery == "skip":
                await skip_subtask(session, task_id=task_id, subtask_id=bad, actor="admin")
            else:
                await rollback_task(session, task_id=task_id, actor="admin")
        task, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert task.operation == "ROLLBACK"
    assert {s.status for s in subtasks} == {"PENDING"}
    expected = "ROLLBACK_SKIP" if recovery == "skip" else "ROLLBACK"
    assert subtasks[1].operation == expected
    rollbacks = [r["subtask"] for r in read_records(record_file) if r["event"] == "rollback"]
    tries_of_bad = 1 if recovery == "skip" else 2
    assert rollbacks == [flaky] + [bad] * tries_of_bad + [first]


async def test_the_transition_table_refuses_what_does_not_exist(database: Database) -> None:
    async with database.transaction(write=True) as session:
        for source, target in [
            ("PENDING", "FAILED"),
            ("SUCCESSFUL", "RUNNING"),
            ("READY", "PENDING"),
        ]:
            with pytest.raises(repo.IllegalTransition, match=f"{source} -> {target}"):
                await repo.transition_subtasks(
                    session,
                    SubtaskInstance.id == 1,
                    expect=SubtaskStatus(source),
                    to=SubtaskStatus(target),
                )
