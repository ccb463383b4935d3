"""The DAG moving on: stages in order, parallel branches, Wait nodes joining, and the
task settling (with its template's end hook)."""

from __future__ import annotations

from pathlib import Path

from obpilot.db.engine import Database
from obpilot.engine import Context, Template, single
from tests.support.engine_tasks import (
    SEED_STOP,
    Noop,
    catalog_with,
    log_of,
    read_records,
    running_engine,
    seed_context,
    submit_task,
    wait_task,
)


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


async def test_the_end_hook_runs_in_the_ending_transaction(any_database: Database) -> None:
    ended: list[tuple[str, str]] = []

    async def on_end(session: object, task: object) -> None:
        ended.append((task.status, task.operation))  # type: ignore[attr-defined]
        raise RuntimeError("a failing hook does not block the task")

    template = Template(key="test.hook", name="Hook", stages=[single(Noop)], on_end=on_end)
    async with running_engine(any_database, catalog=catalog_with(template)):
        task_id = await submit_task(any_database, template, Context())
        await wait_task(any_database, task_id, "SUCCESSFUL")
    assert ended == [("SUCCESSFUL", "EXECUTE")]
