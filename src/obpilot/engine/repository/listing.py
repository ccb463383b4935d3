"""The task center's list: filtered, sorted pages of tasks and their subtasks."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.repository.rows import core_table

Sub = SubtaskInstance

TASK_SORT: dict[str, Any] = {
    "id": TaskInstance.id,
    "name": TaskInstance.name,
    "status": TaskInstance.status,
    "type": TaskInstance.type,
    "createTime": TaskInstance.create_time,
    "startTime": TaskInstance.start_time,
    "finishTime": TaskInstance.finish_time,
}


@dataclass(frozen=True)
class TaskFilter:
    name: str | None = None  # substring, any case
    statuses: Sequence[str] = ()
    types: Sequence[str] = ()
    cluster_id: int | None = None
    cluster_name: str | None = None  # substring, any case
    tenant_id: int | None = None
    host_id: int | None = None
    # None: tasks of every cluster; otherwise only tasks of these clusters, and tasks that
    # belong to no cluster.
    within_clusters: frozenset[int] | None = None


class SubtaskLine(NamedTuple):
    """A subtask as a task's entry in the list shows it."""

    task_id: int
    id: int
    name: str
    description: str
    status: str
    operation: str


class TaskPage(NamedTuple):
    tasks: list[TaskInstance]
    total: int


async def page_tasks(
    session: AsyncSession,
    where: TaskFilter,
    *,
    offset: int,
    limit: int,
    sort: Sequence[tuple[str, bool]],
) -> TaskPage:
    """A page of tasks; `sort` is (TASK_SORT key, descending) pairs; default newest first."""
    statement = select(TaskInstance)
    if where.name:
        statement = statement.where(TaskInstance.name.icontains(where.name, autoescape=True))
    if where.statuses:
        statement = statement.where(TaskInstance.status.in_(list(where.statuses)))
    if where.types:
        statement = statement.where(TaskInstance.type.in_(list(where.types)))
    if where.cluster_id is not None:
        statement = statement.where(TaskInstance.cluster_id == where.cluster_id)
    if where.cluster_name:
        statement = statement.where(
            TaskInstance.cluster_name.icontains(where.cluster_name, autoescape=True)
        )
    if where.tenant_id is not None:
        statement = statement.where(TaskInstance.tenant_id == where.tenant_id)
    if where.host_id is not None:
        statement = statement.where(TaskInstance.host_id == where.host_id)
    if where.within_clusters is not None:
        statement = statement.where(
            or_(
                TaskInstance.cluster_id.is_(None),
                TaskInstance.cluster_id.in_(sorted(where.within_clusters)),
            )
        )
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    order = [TASK_SORT[key].desc() if desc else TASK_SORT[key].asc() for key, desc in sort]
    order.append(TaskInstance.id.asc() if sort else TaskInstance.id.desc())
    rows = await session.scalars(statement.order_by(*order).offset(offset).limit(limit))
    return TaskPage(list(rows), int(total or 0))


async def subtasks_of_tasks(session: AsyncSession, task_ids: Collection[int]) -> list[SubtaskLine]:
    """The subtasks of a page's tasks, by task and id: those columns alone, no ORM objects
    (a task may have thousands)."""
    if not task_ids:
        return []
    table = core_table(Sub)
    result = await session.execute(
        select(*(table.c[name] for name in SubtaskLine._fields))
        .where(table.c.task_id.in_(list(task_ids)))
        .order_by(table.c.task_id, table.c.id)
    )
    return list(map(SubtaskLine._make, result))
