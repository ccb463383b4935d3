"""Task and subtask rows: inserting a task's DAG and reading it back."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskDependency, SubtaskInstance, TaskInstance
from obpilot.engine.states import SubtaskOperation

Sub = SubtaskInstance


def core_table(model: type[Any]) -> Table:
    """The Core table: bulk inserts through it skip the ORM's per-row work."""
    return cast(Table, model.__table__)


@dataclass(frozen=True)
class SubtaskRef:
    """What claiming and running a subtask needs (a plain snapshot of its row)."""

    id: int
    task_id: int
    version: int
    name: str
    class_name: str
    operation: SubtaskOperation
    run_time: int
    timeout: int
    stage: int
    parallel_idx: int
    parallel_key: str | None
    resumable: bool

    @classmethod
    def of(cls, row: SubtaskInstance) -> SubtaskRef:
        return cls(
            id=row.id,
            task_id=row.task_id,
            version=row.version,
            name=row.name,
            class_name=row.class_name,
            operation=SubtaskOperation(row.operation),
            run_time=row.run_time,
            timeout=row.timeout,
            stage=row.stage,
            parallel_idx=row.parallel_idx,
            parallel_key=row.parallel_key,
            resumable=row.resumable,
        )


class Edge(NamedTuple):
    parent: int
    child: int


class Neighbours(NamedTuple):
    upstreams: list[int]
    downstreams: list[int]


class SubtaskView(NamedTuple):
    """A subtask's row as the task center shows it (the columns in `SubtaskView._fields`)."""

    id: int
    task_id: int
    name: str
    series_id: int
    description: str
    class_name: str
    timeout: int
    status: str
    operation: str
    executor: str | None
    run_time: int
    create_time: datetime
    start_time: datetime | None
    finish_time: datetime | None
    node_type: str
    parallel_idx: int
    prohibit_rollback: bool
    error_code: str | None
    error_message: str | None

    @classmethod
    def of(cls, row: SubtaskInstance) -> SubtaskView:
        return cls._make(getattr(row, name) for name in cls._fields)


class DagView(NamedTuple):
    """A task's subtasks and edges as the task center shows them; `insert_subtasks` gives
    the one it wrote, so that an answer needs not read it back."""

    subtasks: list[SubtaskView]  # in id order
    edges: list[Edge]  # by subtask id


class SubtaskState(NamedTuple):
    """What changes when a subtask moves: enough to notice that it did."""

    id: int
    status: str
    operation: str
    version: int


# ---------------------------------------------------------------- creation


async def insert_task(session: AsyncSession, task: TaskInstance) -> TaskInstance:
    session.add(task)
    await session.flush()
    return task


async def insert_subtasks(
    session: AsyncSession,
    task_id: int,
    rows: Sequence[dict[str, Any]],
    edges: Iterable[Edge],
) -> DagView:
    """Bulk-inserts a task's subtasks and its edges (given as series-id pairs). Ids are
    read back by series id because not every dialect (seekdb) returns them from a
    multi-row INSERT. Returns the DAG as written (as reading it back would give it)."""
    if rows:
        await session.execute(core_table(Sub).insert(), list(rows))
    result = await session.execute(select(Sub.series_id, Sub.id).where(Sub.task_id == task_id))
    ids = {int(series): int(subtask_id) for series, subtask_id in result.all()}
    written = [Edge(ids[edge.parent], ids[edge.child]) for edge in edges]
    if written:
        await session.execute(
            core_table(SubtaskDependency).insert(),
            [{"parent_id": p, "child_id": c, "task_id": task_id} for p, c in written],
        )
    subtasks = [
        SubtaskView._make(
            ids[row["series_id"]] if name == "id" else row.get(name) for name in SubtaskView._fields
        )
        for row in rows
    ]
    return DagView(sorted(subtasks, key=lambda subtask: subtask.id), written)


# ---------------------------------------------------------------- reads


async def get_task(
    session: AsyncSession, task_id: int, *, for_update: bool = False
) -> TaskInstance | None:
    """With `for_update`, the task row is locked: every transaction that changes a task's
    subtasks takes this lock first, so they serialise per task (no lost promotions)."""
    statement = select(TaskInstance).where(TaskInstance.id == task_id)
    if for_update:
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


async def get_subtask(
    session: AsyncSession, subtask_id: int, *, task_id: int | None = None
) -> SubtaskInstance | None:
    statement = select(Sub).where(Sub.id == subtask_id)
    if task_id is not None:
        statement = statement.where(Sub.task_id == task_id)
    return await session.scalar(statement.execution_options(populate_existing=True))


async def list_subtasks(session: AsyncSession, task_id: int) -> list[SubtaskInstance]:
    rows = await session.scalars(
        select(Sub)
        .where(Sub.task_id == task_id)
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def subtask_views(session: AsyncSession, task_id: int) -> list[SubtaskView]:
    """A task's subtasks in id order, as the task center shows them: one Core SELECT of
    those columns alone, no ORM objects (a task may have thousands)."""
    table = core_table(Sub)
    result = await session.execute(
        select(*(table.c[name] for name in SubtaskView._fields))
        .where(table.c.task_id == task_id)
        .order_by(table.c.id)
    )
    return list(map(SubtaskView._make, result))


async def subtasks_by_ids(session: AsyncSession, ids: Collection[int]) -> list[SubtaskInstance]:
    if not ids:
        return []
    rows = await session.scalars(
        select(Sub)
        .where(Sub.id.in_(list(ids)))
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def tasks_by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, TaskInstance]:
    rows = await session.scalars(
        select(TaskInstance)
        .where(TaskInstance.id.in_(list(ids)))
        .execution_options(populate_existing=True)
    )
    return {task.id: task for task in rows}


async def list_edges(session: AsyncSession, task_id: int) -> list[Edge]:
    table = core_table(SubtaskDependency)
    result = await session.execute(
        select(table.c.parent_id, table.c.child_id).where(table.c.task_id == task_id)
    )
    return list(map(Edge._make, result))


async def subtask_neighbours(session: AsyncSession, subtask_id: int) -> Neighbours:
    ups = await session.scalars(
        select(SubtaskDependency.parent_id)
        .where(SubtaskDependency.child_id == subtask_id)
        .order_by(SubtaskDependency.parent_id)
    )
    downs = await session.scalars(
        select(SubtaskDependency.child_id)
        .where(SubtaskDependency.parent_id == subtask_id)
        .order_by(SubtaskDependency.child_id)
    )
    return Neighbours([int(i) for i in ups], [int(i) for i in downs])


async def subtask_states(session: AsyncSession, task_id: int) -> list[SubtaskState]:
    """Every subtask of a task, in id order: cheap change detection."""
    result = await session.execute(
        select(Sub.id, Sub.status, Sub.operation, Sub.version)
        .where(Sub.task_id == task_id)
        .order_by(Sub.id)
    )
    return [SubtaskState(int(i), str(s), str(o), int(v)) for i, s, o, v in result.all()]


async def statuses(session: AsyncSession, task_id: int) -> set[str]:
    """The distinct statuses of a task's subtasks."""
    rows = await session.scalars(select(Sub.status).where(Sub.task_id == task_id).distinct())
    return {str(status) for status in rows}
