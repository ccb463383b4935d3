"""The one statement that changes a subtask's status (`transition_subtasks`), and its twin
for the task row: a conditional UPDATE on id + expected status (+ a fence: version, lease
token) whose row count says whether the change happened. Locks only make contention cheap;
correctness rests on those conditions. Which change to make is `engine.transitions`'
business; these only refuse a pair the tables in `states` do not have."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from obpilot.db.base import utcnow
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.repository.rows import core_table
from obpilot.engine.states import (
    SUBTASK_TRANSITIONS,
    TASK_TRANSITIONS,
    SubtaskStatus,
    TaskStatus,
)

Sub = SubtaskInstance


class IllegalTransition(RuntimeError):
    pass


# Core, not the ORM: these UPDATEs then skip the ORM's bulk-update bookkeeping (nothing
# here needs it: callers hold no loaded rows they expect to change).
SUBTASKS = core_table(Sub)


async def transition_subtasks(
    session: AsyncSession,
    *,
    ids: Collection[int] | None = None,
    task_id: int | None = None,
    fence: Mapping[str, Any] | None = None,
    expect: SubtaskStatus | Collection[SubtaskStatus],
    to: SubtaskStatus,
    values: Mapping[str, Any] | None = None,
    bump_run_time: bool = False,
) -> int:
    """Moves the subtasks `ids` (or every subtask of `task_id`) that are in one of `expect`
    and whose columns equal `fence` to `to`; returns how many moved. The only statement
    that changes a subtask's status."""
    expected = (expect,) if isinstance(expect, SubtaskStatus) else tuple(expect)
    for source in expected:
        if (source, to) not in SUBTASK_TRANSITIONS:
            raise IllegalTransition(f"subtask status {source} -> {to} does not exist")
    columns = SUBTASKS.c
    conditions: list[ColumnElement[bool]] = [columns.status.in_([s.value for s in expected])]
    if ids is not None:
        conditions.append(columns.id.in_(list(ids)))
    if task_id is not None:
        conditions.append(columns.task_id == task_id)
    conditions += [columns[name] == value for name, value in (fence or {}).items()]
    changes: dict[str, Any] = {
        "status": to.value,
        "version": columns.version + 1,
        "update_time": utcnow(),
        **(values or {}),
    }
    if bump_run_time:
        changes["run_time"] = columns.run_time + 1
    statement = update(SUBTASKS).where(*conditions).values(changes)
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


async def transition_subtask(
    session: AsyncSession,
    subtask_id: int,
    *,
    fence: Mapping[str, Any],
    expect: SubtaskStatus | Collection[SubtaskStatus],
    to: SubtaskStatus,
    values: Mapping[str, Any] | None = None,
    bump_run_time: bool = False,
) -> bool:
    """One subtask, fenced by columns that say it is still as its caller saw it: its
    version, or (for its running holder) its lease token, or its run."""
    moved = await transition_subtasks(
        session,
        ids=[subtask_id],
        fence=fence,
        expect=expect,
        to=to,
        values=values,
        bump_run_time=bump_run_time,
    )
    return moved == 1


async def transition_task(
    session: AsyncSession,
    task: TaskInstance,
    *,
    to: TaskStatus,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """The task row, fenced by (id, status, version). Updates `task` in memory on success."""
    source = TaskStatus(task.status)
    if (source, to) not in TASK_TRANSITIONS:
        raise IllegalTransition(f"task status {source} -> {to} does not exist")
    changes: dict[str, Any] = {
        "status": to.value,
        "version": task.version + 1,
        "update_time": utcnow(),
        **(values or {}),
    }
    statement = (
        update(TaskInstance)
        .where(
            TaskInstance.id == task.id,
            TaskInstance.status == source.value,
            TaskInstance.version == task.version,
        )
        .values(changes)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    if result.rowcount != 1:
        return False
    changes["version"] = task.version + 1
    for key, value in changes.items():
        set_committed_value(task, key, value)  # mirror the row without a second UPDATE
    return True
