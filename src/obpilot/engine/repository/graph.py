"""A task's DAG as it moves on: the edges read once, children counted off as their
upstreams succeed, and the next subtasks of a rollback."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import CursorResult, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskDependency, SubtaskInstance
from obpilot.engine.repository.rows import SubtaskRef, core_table, list_edges
from obpilot.engine.states import SubtaskOperation, SubtaskStatus

S = SubtaskStatus
Sub = SubtaskInstance


@dataclass(frozen=True)
class Dag:
    """A task's DAG as submitted (it never changes): per subtask, its children and how many
    upstreams it has, and the fields a run needs."""

    children: dict[int, tuple[int, ...]]
    upstream_count: dict[int, int]
    nodes: dict[int, SubtaskRef]  # as first run: runTime 1, operation EXECUTE, version -1


async def dag(session: AsyncSession, task_id: int) -> Dag:
    table = core_table(Sub)
    result = await session.execute(
        select(
            table.c.id,
            table.c.name,
            table.c.class_name,
            table.c.timeout,
            table.c.stage,
            table.c.parallel_idx,
            table.c.parallel_key,
            table.c.resumable,
        ).where(table.c.task_id == task_id)
    )
    nodes = {
        int(row.id): SubtaskRef(
            id=int(row.id),
            task_id=task_id,
            version=-1,
            name=row.name,
            class_name=row.class_name,
            operation=SubtaskOperation.EXECUTE,
            run_time=1,
            timeout=row.timeout,
            stage=row.stage,
            parallel_idx=row.parallel_idx,
            parallel_key=row.parallel_key,
            resumable=bool(row.resumable),
        )
        for row in result.all()
    }
    children: dict[int, list[int]] = {node: [] for node in nodes}
    upstream_count = dict.fromkeys(nodes, 0)
    for parent, child in await list_edges(session, task_id):
        children[parent].append(child)
        upstream_count[child] += 1
    return Dag({k: tuple(sorted(v)) for k, v in children.items()}, upstream_count, nodes)


class Child(NamedTuple):
    row: SubtaskInstance
    parents_among: int  # how many of the given parents it has


async def children_of(session: AsyncSession, parent_ids: Collection[int]) -> list[Child]:
    """The children of some subtasks, each with how many of those parents it has."""
    rows = await session.execute(
        select(Sub, func.count())
        .join(SubtaskDependency, SubtaskDependency.child_id == Sub.id)
        .where(SubtaskDependency.parent_id.in_(list(parent_ids)))
        .group_by(Sub.id)
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    return [Child(row, int(count)) for row, count in rows.all()]


async def count_down_upstreams(session: AsyncSession, ids: Collection[int], by: int) -> None:
    """Notes that `by` more upstreams of these PENDING subtasks succeeded."""
    table = core_table(Sub)
    await session.execute(
        update(table)
        .where(table.c.id.in_(list(ids)), table.c.status == S.PENDING.value)
        .values(upstreams_left=table.c.upstreams_left - by)
    )


async def count_down_unless_last(session: AsyncSession, subtask_id: int) -> bool:
    """Notes that one more upstream of a PENDING subtask succeeded, unless it was its last
    (then the caller completes it); whether it counted down. Spares reading the row."""
    table = core_table(Sub)
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(table)
        .where(
            table.c.id == subtask_id,
            table.c.status == S.PENDING.value,
            table.c.upstreams_left > 1,
        )
        .values(upstreams_left=table.c.upstreams_left - 1)
    )
    return result.rowcount == 1


async def rollback_ready_candidates(
    session: AsyncSession, task_id: int, *, among: Collection[int] | None = None
) -> list[int]:
    """Subtasks marked for rollback (operation ROLLBACK, SUCCESSFUL or FAILED) whose
    downstreams are all PENDING (undone or never run): the next ones to roll back. A query,
    not a rule in `engine.transitions`: it runs after every rolled-back subtask, and reading
    the whole DAG each time would make a wide rollback quadratic."""
    child = Sub.__table__.alias("child")
    blocking = (
        select(SubtaskDependency.parent_id)
        .join(child, child.c.id == SubtaskDependency.child_id)
        .where(SubtaskDependency.task_id == task_id, child.c.status != S.PENDING.value)
    )
    condition = and_(
        Sub.task_id == task_id,
        Sub.operation == SubtaskOperation.ROLLBACK.value,
        Sub.status.in_([S.SUCCESSFUL.value, S.FAILED.value]),
        Sub.id.not_in(blocking),
    )
    if among is not None:
        condition = and_(condition, Sub.id.in_(list(among)))
    rows = await session.scalars(select(Sub.id).where(condition).order_by(Sub.id))
    return [int(i) for i in rows]


async def parent_ids(session: AsyncSession, subtask_id: int) -> list[int]:
    rows = await session.scalars(
        select(SubtaskDependency.parent_id).where(SubtaskDependency.child_id == subtask_id)
    )
    return [int(i) for i in rows]
