"""The repository's transition function refuses a status change the table does not have;
inserting a task's DAG answers it as reading it back does."""

from __future__ import annotations

import pytest

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import SubtaskStatus, TaskInstance
from obpilot.engine import repository as repo


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
                    ids=[1],
                    expect=SubtaskStatus(source),
                    to=SubtaskStatus(target),
                )


async def test_inserting_a_dag_answers_it_as_it_reads_back(any_database: Database) -> None:
    now = utcnow()
    async with any_database.transaction(write=True) as session:
        task = await repo.insert_task(
            session,
            TaskInstance(
                name="t", type="MANUAL", status="RUNNING", operation="EXECUTE", context="{}"
            ),
        )
        rows = [
            {
                "task_id": task.id,
                "series_id": series,
                "stage": stage,
                "name": f"step {series}",
                "description": f"step {series}",
                "class_name": "tests.Step",
                "node_type": "PYTHON_TASK",
                "status": "PENDING" if stage else "READY",
                "operation": "EXECUTE",
                "run_time": 1,
                "timeout": 30,
                "parallel_idx": -1 if stage != 1 else series - 1,
                "parallel_key": None,
                "prohibit_rollback": series == 3,
                "resumable": False,
                "upstreams_left": 0 if stage == 0 else 1,
                "version": 0,
                "create_time": now,
                "update_time": now,
            }
            for series, stage in [(0, 0), (1, 1), (2, 1), (3, 2)]
        ]
        edges = [repo.Edge(0, 1), repo.Edge(0, 2), repo.Edge(1, 3), repo.Edge(2, 3)]
        written = await repo.insert_subtasks(session, task.id, rows, edges)
    async with any_database.transaction() as session:
        subtasks = await repo.subtask_views(session, task.id)
        read = repo.DagView(subtasks, await repo.list_edges(session, task.id))
    assert written.subtasks == read.subtasks
    assert sorted(written.edges) == sorted(read.edges)
    assert [s.series_id for s in written.subtasks] == [0, 1, 2, 3]
