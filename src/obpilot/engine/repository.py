"""All task-engine SQL. Nothing here commits: callers own their transactions.

The one transition function is `transition_subtasks` (and `transition_task` for the task
row): a conditional UPDATE on id + expected status (+ version or lease token) whose row
count says whether the change happened. Locks only make contention cheap; correctness
rests on those conditions."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from obpilot.db.base import utcnow
from obpilot.engine.models import (
    SubtaskDependency,
    SubtaskInstance,
    SubtaskLog,
    SubtaskOutput,
    TaskInstance,
)
from obpilot.engine.states import (
    ACTIVE_SUBTASK_STATUSES,
    SUBTASK_TRANSITIONS,
    TASK_TRANSITIONS,
    SubtaskStatus,
    TaskStatus,
)

S = SubtaskStatus
Sub = SubtaskInstance


class IllegalTransition(RuntimeError):
    pass


def _table(model: type[Any]) -> Table:
    """The Core table: bulk inserts through it skip the ORM's per-row work."""
    return cast(Table, model.__table__)


# ---------------------------------------------------------------- transitions


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


# ---------------------------------------------------------------- creation


async def insert_task(session: AsyncSession, task: TaskInstance) -> TaskInstance:
    session.add(task)
    await session.flush()
    return task


async def insert_subtasks(
    session: AsyncSession,
    task_id: int,
    rows: Sequence[dict[str, Any]],
    edges: Iterable[tuple[int, int]],
) -> dict[int, int]:
    """Bulk-inserts a task's subtasks and its edges (given as series-id pairs); returns
    series id -> subtask id. Ids are read back by series id because not every dialect
    (seekdb) returns them from a multi-row INSERT."""
    if rows:
        await session.execute(_table(Sub).insert(), list(rows))
    result = await session.execute(select(Sub.series_id, Sub.id).where(Sub.task_id == task_id))
    ids = {int(series): int(subtask_id) for series, subtask_id in result.all()}
    edge_rows = [
        {"parent_id": ids[parent], "child_id": ids[child], "task_id": task_id}
        for parent, child in edges
    ]
    if edge_rows:
        await session.execute(_table(SubtaskDependency).insert(), edge_rows)
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
    table = _table(Sub)
    result = await session.execute(
        select(table).where(table.c.task_id == task_id).order_by(table.c.id)
    )
    return list(result.all())


async def list_edges(session: AsyncSession, task_id: int) -> list[tuple[int, int]]:
    result = await session.execute(
        select(SubtaskDependency.parent_id, SubtaskDependency.child_id).where(
            SubtaskDependency.task_id == task_id
        )
    )
    return [(int(p), int(c)) for p, c in result.all()]


async def subtask_neighbours(session: AsyncSession, subtask_id: int) -> tuple[list[int], list[int]]:
    """(upstream ids, downstream ids) of one subtask."""
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
    return [int(i) for i in ups], [int(i) for i in downs]


async def statuses(session: AsyncSession, task_id: int) -> set[str]:
    """The distinct statuses of a task's subtasks."""
    rows = await session.scalars(select(Sub.status).where(Sub.task_id == task_id).distinct())
    return {str(status) for status in rows}


async def any_subtask(
    session: AsyncSession,
    task_id: int,
    *,
    status_in: Collection[str] | None = None,
    status_not_in: Collection[str] | None = None,
) -> bool:
    condition = Sub.task_id == task_id
    if status_in is not None:
        condition = and_(condition, Sub.status.in_(list(status_in)))
    if status_not_in is not None:
        condition = and_(condition, Sub.status.not_in(list(status_not_in)))
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


# ---------------------------------------------------------------- promotion


@dataclass(frozen=True)
class Dag:
    """A task's DAG as submitted (it never changes): per subtask, its children and how many
    upstreams it has, and the fields a run needs."""

    children: dict[int, tuple[int, ...]]
    upstream_count: dict[int, int]
    nodes: dict[int, SubtaskRef]  # as first run: runTime 1, operation EXECUTE, version -1


async def dag(session: AsyncSession, task_id: int) -> Dag:
    table = _table(Sub)
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
            operation="EXECUTE",
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


async def children_of(
    session: AsyncSession, parent_ids: Collection[int]
) -> list[tuple[SubtaskInstance, int]]:
    """The children of some subtasks, each with how many of those parents it has."""
    rows = await session.execute(
        select(Sub, func.count())
        .join(SubtaskDependency, SubtaskDependency.child_id == Sub.id)
        .where(SubtaskDependency.parent_id.in_(list(parent_ids)))
        .group_by(Sub.id)
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    return [(row, int(count)) for row, count in rows.all()]


async def count_down_upstreams(session: AsyncSession, ids: Collection[int], by: int) -> None:
    """Notes that `by` more upstreams of these PENDING subtasks succeeded."""
    await session.execute(
        update(Sub)
        .where(Sub.id.in_(list(ids)), Sub.status == S.PENDING.value)
        .values(upstreams_left=Sub.upstreams_left - by)
        .execution_options(synchronize_session=False)
    )


async def repair_promotions(session: AsyncSession, task_id: int) -> int:
    """Recomputes readiness from the edges (a safety net; the counters normally suffice)."""
    parent = Sub.__table__.alias("parent")
    not_done = func.sum(case((parent.c.status != S.SUCCESSFUL.value, 1), else_=0))
    waiting = (
        select(SubtaskDependency.child_id)
        .join(parent, parent.c.id == SubtaskDependency.parent_id)
        .where(SubtaskDependency.task_id == task_id)
        .group_by(SubtaskDependency.child_id)
        .having(not_done > 0)
    )
    rows = await session.scalars(
        select(Sub.id).where(
            Sub.task_id == task_id, Sub.status == S.PENDING.value, Sub.id.not_in(waiting)
        )
    )
    ready = [int(i) for i in rows]
    if not ready:
        return 0
    return await transition_subtasks(session, Sub.id.in_(ready), expect=S.PENDING, to=S.READY)


async def rollback_ready_candidates(
    session: AsyncSession, task_id: int, *, among: Collection[int] | None = None
) -> list[int]:
    """Subtasks marked for rollback (operation ROLLBACK, SUCCESSFUL or FAILED) whose
    downstreams are all PENDING (undone or never run): the next ones to roll back."""
    child = Sub.__table__.alias("child")
    blocking = (
        select(SubtaskDependency.parent_id)
        .join(child, child.c.id == SubtaskDependency.child_id)
        .where(SubtaskDependency.task_id == task_id, child.c.status != S.PENDING.value)
    )
    condition = and_(
        Sub.task_id == task_id,
        Sub.operation == "ROLLBACK",
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


# ---------------------------------------------------------------- claims and leases


@dataclass(frozen=True)
class SubtaskRef:
    """What claiming and running a READY subtask needs (a plain snapshot of its row)."""

    id: int
    task_id: int
    version: int
    name: str
    class_name: str
    operation: str
    run_time: int
    timeout: int
    stage: int
    parallel_idx: int
    parallel_key: str | None
    resumable: bool

    @classmethod
    def of(cls, row: SubtaskInstance, *, version: int | None = None) -> SubtaskRef:
        return cls(
            id=row.id,
            task_id=row.task_id,
            version=row.version if version is None else version,
            name=row.name,
            class_name=row.class_name,
            operation=row.operation,
            run_time=row.run_time,
            timeout=row.timeout,
            stage=row.stage,
            parallel_idx=row.parallel_idx,
            parallel_key=row.parallel_key,
            resumable=row.resumable,
        )


async def any_ready(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(Sub.status == S.READY.value))))


async def ready_candidates(
    session: AsyncSession, *, limit: int, locking: str
) -> list[SubtaskInstance]:
    """READY subtasks, oldest first, for a claim. `locking`:

    * "skip_locked" (PostgreSQL, MariaDB/MySQL): `ORDER BY id LIMIT n FOR UPDATE SKIP
      LOCKED`: rows other claimers hold are passed over.
    * "window" (seekdb/OceanBase): there `LIMIT n` with SKIP LOCKED returned no rows at
      all while the first rows were locked, so the first `n` ids are read without locks,
      then locked with SKIP LOCKED and no LIMIT.
    * "none" (SQLite, whose BEGIN IMMEDIATE already serialises writers).

    The claim itself is the conditional UPDATE, so correctness never rests on the lock."""
    statement = (
        select(Sub)
        .where(Sub.status == S.READY.value)
        .order_by(Sub.id)
        .execution_options(populate_existing=True)
    )
    if locking == "window":
        ids = list(
            await session.scalars(
                select(Sub.id).where(Sub.status == S.READY.value).order_by(Sub.id).limit(limit)
            )
        )
        if not ids:
            return []
        statement = statement.where(Sub.id.in_(ids)).with_for_update(skip_locked=True)
    elif locking == "skip_locked":
        statement = statement.limit(limit).with_for_update(skip_locked=True)
    else:
        statement = statement.limit(limit)
    return list(await session.scalars(statement))


async def renew_leases(
    session: AsyncSession, tokens: Collection[str], *, deadline: datetime
) -> dict[str, tuple[int, str, int]]:
    """Extends the leases still held; returns token -> (subtask id, status, version) for
    the rows that still carry the token (a missing token is a lost lease)."""
    if not tokens:
        return {}
    await session.execute(
        update(Sub)
        .where(
            Sub.lease_token.in_(list(tokens)), Sub.status.in_([S.RUNNING.value, S.CANCELING.value])
        )
        .values(lease_deadline=deadline)
        .execution_options(synchronize_session=False)
    )
    return await held_rows(session, tokens)


async def held_rows(
    session: AsyncSession, tokens: Collection[str]
) -> dict[str, tuple[int, str, int]]:
    if not tokens:
        return {}
    result = await session.execute(
        select(Sub.lease_token, Sub.id, Sub.status, Sub.version).where(
            Sub.lease_token.in_(list(tokens))
        )
    )
    return {str(t): (int(i), str(s), int(v)) for t, i, s, v in result.all()}


async def expired_leases(
    session: AsyncSession, *, now: datetime, limit: int = 500
) -> list[SubtaskInstance]:
    rows = await session.scalars(
        select(Sub)
        .where(
            Sub.status.in_([S.RUNNING.value, S.CANCELING.value]),
            or_(Sub.lease_deadline.is_(None), Sub.lease_deadline < now),
        )
        .order_by(Sub.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return list(rows)


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


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Output:
    subtask_id: int
    stage: int
    parallel_idx: int
    key: str
    value: str | list[str]


def _output(row: SubtaskOutput) -> Output:
    value: str | list[str] = json.loads(row.output_value) if row.is_list else row.output_value
    return Output(row.subtask_id, row.stage, row.parallel_idx, row.output_key, value)


async def visible_outputs(
    session: AsyncSession, *, task_id: int, stage: int, subtask_id: int
) -> list[Output]:
    """What a subtask sees: outputs of SUCCESSFUL subtasks of earlier stages, then its own
    (from an earlier run), in stage and branch order (later writers win)."""
    rows = await session.scalars(
        select(SubtaskOutput)
        .join(Sub, Sub.id == SubtaskOutput.subtask_id)
        .where(
            SubtaskOutput.task_id == task_id,
            or_(
                and_(SubtaskOutput.stage < stage, Sub.status == S.SUCCESSFUL.value),
                SubtaskOutput.subtask_id == subtask_id,
            ),
        )
        .order_by(SubtaskOutput.stage, SubtaskOutput.parallel_idx, SubtaskOutput.id)
    )
    return [_output(row) for row in rows]


async def task_outputs(session: AsyncSession, task_id: int) -> list[Output]:
    rows = await session.scalars(
        select(SubtaskOutput).where(SubtaskOutput.task_id == task_id).order_by(SubtaskOutput.id)
    )
    return [_output(row) for row in rows]


async def holds_lease(session: AsyncSession, subtask_id: int, lease_token: str) -> bool:
    """True while the run holding `lease_token` owns the subtask; the row stays locked to
    the end of the transaction, so the answer holds until then."""
    found = await session.scalar(
        select(Sub.id)
        .where(
            Sub.id == subtask_id,
            Sub.lease_token == lease_token,
            Sub.status.in_([S.RUNNING.value, S.CANCELING.value]),
        )
        .with_for_update()
    )
    return found is not None


async def put_output(
    session: AsyncSession,
    *,
    task_id: int,
    subtask_id: int,
    stage: int,
    parallel_idx: int,
    key: str,
    value: str | list[str],
) -> None:
    await session.execute(
        delete(SubtaskOutput).where(
            SubtaskOutput.subtask_id == subtask_id, SubtaskOutput.output_key == key
        )
    )
    is_list = isinstance(value, list)
    await session.execute(
        insert(SubtaskOutput).values(
            task_id=task_id,
            subtask_id=subtask_id,
            stage=stage,
            parallel_idx=parallel_idx,
            output_key=key,
            is_list=is_list,
            output_value=json.dumps(value) if is_list else value,
        )
    )
    await session.execute(
        update(TaskInstance)
        .where(TaskInstance.id == task_id, TaskInstance.has_outputs.is_(False))
        .values(has_outputs=True)
        .execution_options(synchronize_session=False)
    )


# ---------------------------------------------------------------- logs


@dataclass(frozen=True)
class LogLine:
    task_id: int
    subtask_id: int
    run_time: int
    content: str
    time: datetime


async def insert_log_lines(session: AsyncSession, lines: Sequence[LogLine]) -> None:
    if lines:
        await session.execute(
            _table(SubtaskLog).insert(),
            [
                {
                    "task_id": line.task_id,
                    "subtask_id": line.subtask_id,
                    "run_time": line.run_time,
                    "content": line.content,
                    "create_time": line.time,
                }
                for line in lines
            ],
        )


async def subtask_log(session: AsyncSession, subtask_id: int) -> list[str]:
    rows = await session.scalars(
        select(SubtaskLog.content)
        .where(SubtaskLog.subtask_id == subtask_id)
        .order_by(SubtaskLog.run_time, SubtaskLog.id)
    )
    return list(rows)


async def max_log_id(session: AsyncSession, task_id: int) -> int:
    value = await session.scalar(
        select(func.max(SubtaskLog.id)).where(SubtaskLog.task_id == task_id)
    )
    return int(value or 0)


async def log_rows_after(
    session: AsyncSession, task_id: int, after_id: int, *, limit: int = 5000
) -> list[SubtaskLog]:
    rows = await session.scalars(
        select(SubtaskLog)
        .where(SubtaskLog.task_id == task_id, SubtaskLog.id > after_id)
        .order_by(SubtaskLog.id)
        .limit(limit)
    )
    return list(rows)


async def subtask_states(session: AsyncSession, task_id: int) -> list[tuple[int, str, str, int]]:
    """(id, status, operation, version) of every subtask of a task: cheap change detection."""
    result = await session.execute(
        select(Sub.id, Sub.status, Sub.operation, Sub.version)
        .where(Sub.task_id == task_id)
        .order_by(Sub.id)
    )
    return [(int(i), str(s), str(o), int(v)) for i, s, o, v in result.all()]


# ---------------------------------------------------------------- listing


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


async def page_tasks(
    session: AsyncSession,
    where: TaskFilter,
    *,
    offset: int,
    limit: int,
    sort: Sequence[tuple[str, bool]],
) -> tuple[list[TaskInstance], int]:
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
    return list(rows), int(total or 0)


async def subtasks_of_tasks(
    session: AsyncSession, task_ids: Collection[int]
) -> list[SubtaskInstance]:
    if not task_ids:
        return []
    rows = await session.scalars(
        select(Sub).where(Sub.task_id.in_(list(task_ids))).order_by(Sub.task_id, Sub.id)
    )
    return list(rows)


# ---------------------------------------------------------------- clock


async def database_utc_now(session: AsyncSession, dialect: str) -> datetime | None:
    """The metadb's clock (naive UTC), or None where the metadb is local (SQLite)."""
    if dialect == "postgresql":
        value = await session.scalar(text("SELECT clock_timestamp() AT TIME ZONE 'UTC'"))
    elif dialect == "mysql":
        value = await session.scalar(text("SELECT UTC_TIMESTAMP(6)"))
    else:
        return None
    return value if isinstance(value, datetime) else None


async def server_version(session: AsyncSession) -> str:
    return str(await session.scalar(text("SELECT version()")) or "")


__all__ = [
    "ACTIVE_SUBTASK_STATUSES",
    "IllegalTransition",
    "LogLine",
    "Output",
]
