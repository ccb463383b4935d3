"""Running one subtask: cancel (cooperative, then forced), timeouts, outputs reaching later
stages (secrets masked), and a class that is not registered."""

from __future__ import annotations

from pathlib import Path

from obpilot.db.engine import Database
from obpilot.engine import Catalog, Context, Template, cancel_subtask, parallel, single
from obpilot.engine import repository as repo
from tests.engine.helpers import ctx, running
from tests.support.engine_tasks import (
    SECRET_BOX,
    Broken,
    Cooperative,
    Publisher,
    Quick,
    Reader,
    Stubborn,
    log_of,
    one,
    read_records,
    running_engine,
    snapshot,
    submit_task,
    wait_for,
    wait_task,
)


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


async def test_an_unregistered_class_fails_its_subtask(any_database: Database) -> None:
    async with running_engine(any_database, catalog=Catalog()):  # knows no test class
        task_id = await submit_task(any_database, one(Broken), Context())
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
    assert "no subtask class" in (subtasks[0].error_message or "")


async def test_the_first_output_reaches_the_step_claimed_as_its_publisher_ends(
    any_database: Database,
) -> None:
    """The next step is claimed in the very transaction that ends its publisher, the one
    that records the task's first output: it sees that output all the same."""
    template = Template(
        key="test.first_output", name="First output", stages=[single(Publisher), single(Reader)]
    )
    async with running_engine(any_database):
        task_id = await submit_task(any_database, template, Context.of({}, {}))
        _, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    lines = await log_of(any_database, subtasks[-1].id)
    assert any('"published": "value from single"' in line for line in lines), lines
