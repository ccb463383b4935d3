"""Task and subtask rows: inserting a task's DAG and reading it back."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskDependency, SubtaskInstance, TaskInstance
from obpilot.engine.states import SubtaskOperation, SubtaskStatus

S = SubtaskStatus
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
) -> dict[int, int]:
    """Bulk-inserts a task's subtasks and its edges (given as series-id pairs); returns
    series id -> subtask id. Ids are read back by series id because not every dialect
    (seekdb) returns them from a multi-row INSERT."""
    if rows:
        await session.execute(core_table(Sub).insert(), list(rows))
    result = await session.execute(select(Sub.series_id, Sub.id).where(Sub.task_id == task_id))
    ids = {int(series): int(subtask_id) for series, subtask_id in result.all()}
    edge_rows = [
        {"parent_id": ids[edge.parent], "child_id": ids[edge.child], "task_id": task_id}
        for edge in edges
    ]
    if edge_rows:
        await session.execute(core_table(SubtaskDependency).insert(), edge_rows)
    return ids


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


async def subtask_rows(session: AsyncSession, task_id: int) -> list[Row[Any]]:
    """A task's subtasks as plain rows (no ORM objects: cheaper for thousands)."""
    table = core_table(Sub)
    result = await session.execute(
        select(table).where(table.c.task_id == task_id).order_by(table.c.id)
    )
    return list(result.all())


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
    result = await session.execute(
        select(SubtaskDependency.parent_id, SubtaskDependency.child_id).where(
            SubtaskDependency.task_id == task_id
        )
    )
    return [Edge(int(p), int(c)) for p, c in result.all()]


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


async def any_subtask(session: AsyncSession, task_id: int, *, status_in: Collection[str]) -> bool:
    condition = and_(Sub.task_id == task_id, Sub.status.in_(list(status_in)))
    return bool(await session.scalar(select(exists().where(condition))))


async def prohibits_rollback(session: AsyncSession, task_id: int) -> bool:
    """OCP's rule: a task may not roll back once a subtask that prohibits it has run."""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Sub.task_id == task_id,
                    Sub.prohibit_rollback.is_(True),
                    Sub.status.not_in([S.PENDING.value, S.READY.value]),
                )
            )
        )
    )
