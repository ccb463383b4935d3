"""The one statement that changes a subtask's status (`transition_subtasks`), and its twin
for the task row: a conditional UPDATE on id + expected status (+ version or lease token)
whose row count says whether the change happened. Locks only make contention cheap;
correctness rests on those conditions. Which change to make is `engine.transitions`'
business; these only refuse a pair the tables in `states` do not have."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, and_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from obpilot.db.base import utcnow
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.states import (
    SUBTASK_TRANSITIONS,
    TASK_TRANSITIONS,
    SubtaskStatus,
    TaskStatus,
)

Sub = SubtaskInstance


class IllegalTransition(RuntimeError):
    pass


async def transition_subtasks(
    session: AsyncSession,
    where: ColumnElement[bool],
    *,
    expect: SubtaskStatus | Collection[SubtaskStatus],
    to: SubtaskStatus,
    values: Mapping[str, Any] | None = None,
    bump_run_time: bool = False,
) -> int:
    """Moves the subtasks matching `where` from one of `expect` to `to`; returns how many
    moved. The only statement that changes a subtask's status."""
    expected = (expect,) if isinstance(expect, SubtaskStatus) else tuple(expect)
    for source in expected:
        if (source, to) not in SUBTASK_TRANSITIONS:
            raise IllegalTransition(f"subtask status {source} -> {to} does not exist")
    changes: dict[str, Any] = {
        "status": to.value,
        "version": Sub.version + 1,
        "update_time": utcnow(),
        **(values or {}),
    }
    if bump_run_time:
        changes["run_time"] = Sub.run_time + 1
    statement = (
        update(Sub)
        .where(where, Sub.status.in_([s.value for s in expected]))
        .values(changes)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


async def transition_subtask(
    session: AsyncSession,
    subtask_id: int,
    *,
    expect: SubtaskStatus | Collection[SubtaskStatus],
    to: SubtaskStatus,
    version: int | None = None,
    lease_token: str | None = None,
    values: Mapping[str, Any] | None = None,
    bump_run_time: bool = False,
    guard: ColumnElement[bool] | None = None,
) -> bool:
    """One subtask, fenced by its version (or, for its running holder, its lease token, or
    an explicit `guard`)."""
    condition = Sub.id == subtask_id
    if version is not None:
        condition = and_(condition, Sub.version == version)
    if guard is not None:
        condition = and_(condition, guard)
    if lease_token is not None:
        condition = and_(condition, Sub.lease_token == lease_token)
    moved = await transition_subtasks(
        session, condition, expect=expect, to=to, values=values, bump_run_time=bump_run_time
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
