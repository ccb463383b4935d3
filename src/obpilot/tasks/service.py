"""Task center: reading tasks in OCP's shapes and running OCP's task operations.

A task that belongs to a cluster is that cluster's business: beside the TASK permission
the route checks, seeing it needs `CLUSTER:{id}:READ` and acting on it (retry, rollback,
skip, cancel) `CLUSTER:{id}:UPDATE`. The refusal of a task the caller may not read does
not name its cluster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine import repository as repo
from obpilot.engine import service as engine
from obpilot.engine.catalog import Catalog
from obpilot.engine.context import Context
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.states import SubtaskStatus, TaskStatus, TaskType
from obpilot.errors import ClusterUpdateForbidden, Forbidden, SubtaskNotFound, TaskNotFound
from obpilot.formats import format_time
from obpilot.iam.permissions import Permission, PermissionSet
from obpilot.paging import PageRequest
from obpilot.tasks.schemas import (
    BasicSubtaskOut,
    BriefSubtaskOut,
    ClusterRef,
    CreatorRef,
    SubmittedTaskOut,
    SubtaskLogOut,
    TaskListItem,
)

TASK_SORT = repo.TASK_SORT
NOT_RUN = frozenset({SubtaskStatus.PENDING.value, SubtaskStatus.READY.value})


# Each instant formatted once: a large task's thousands of subtasks share few of them (most
# were created at one instant).
_format_time = lru_cache(maxsize=4096)(format_time)


def _time(value: datetime | None) -> str | None:
    return _format_time(value) if value is not None else None


def _cluster(task: TaskInstance) -> ClusterRef | None:
    if task.cluster_id is None and task.cluster_name is None:
        return None
    return ClusterRef(id=task.cluster_id, name=task.cluster_name, ob_cluster_id=task.ob_cluster_id)


def _creator(task: TaskInstance) -> CreatorRef:
    return CreatorRef(id=task.creator_id, name=task.creator_name)


def _links(edges: Sequence[tuple[int, int]]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    upstreams: dict[int, list[int]] = defaultdict(list)
    downstreams: dict[int, list[int]] = defaultdict(list)
    for parent, child in sorted(edges):
        downstreams[parent].append(child)
        upstreams[child].append(parent)
    return upstreams, downstreams


@dataclass(frozen=True)
class TaskAccess:
    """The caller's permissions, as they bear on tasks that belong to clusters."""

    permissions: PermissionSet

    def readable_clusters(self) -> frozenset[int] | None:
        """The clusters whose tasks the caller may see; None for every cluster."""
        return self.permissions.instances("CLUSTER", "READ")

    def may(self, task: TaskInstance, action: str) -> bool:
        if task.cluster_id is None:
            return True
        return self.permissions.allows(
            Permission(path=(("CLUSTER", str(task.cluster_id)),), action=action)
        )


async def _task(
    session: AsyncSession, task_id: int, access: TaskAccess, *, acting: bool = False
) -> TaskInstance:
    """The task, if the caller may see it (and, `acting`, change it)."""
    task = await repo.get_task(session, task_id)
    if task is None:
        raise TaskNotFound(task_id)
    if not access.may(task, "READ"):
        raise Forbidden(
            f"Not authorized to read task {task_id}: it belongs to a cluster you may not read"
        )
    if acting and not access.may(task, "UPDATE"):
        raise ClusterUpdateForbidden(
            f"Not authorized to update cluster {task.cluster_id}, which task {task_id} belongs to"
        )
    return task


# ---------------------------------------------------------------- shapes


def brief_of(task: TaskInstance, dag: repo.DagView) -> SubmittedTaskOut:
    """Shape A, what an operation endpoint answers (the seed's stop-cluster sample), from
    the task's DAG in hand: the one just written, never read back."""
    upstreams, downstreams = _links(dag.edges)
    return SubmittedTaskOut.model_construct(
        cluster=_cluster(task),
        context=Context.load(task.context).java_string(),
        creator=_creator(task),
        id=task.id,
        name=task.name,
        start_time=_time(task.start_time),
        status=task.status,
        tasks=[
            BriefSubtaskOut.model_construct(
                description=s.description,
                downstreams=downstreams[s.id],
                id=s.id,
                name=s.name,
                operation=s.operation,
                status=s.status,
                upstreams=upstreams[s.id],
            )
            for s in dag.subtasks
        ],
    )


# The full task and its subtasks are rendered straight to `TaskOut`'s and `SubtaskOut`'s
# wire shape (camelCase keys in the models' field order, JSON values), and the routes encode
# them as they are: a model per subtask costs more than the SELECT of thousands of them.
# tests/tasks/test_shapes.py checks that the models take these dicts unchanged.


async def brief_of_stored(session: AsyncSession, task_id: int) -> SubmittedTaskOut | None:
    """Shape A of a task that exists already (a repeated request answers its task)."""
    task = await session.get(TaskInstance, task_id)
    if task is None:
        return None
    dag = repo.DagView(
        await repo.subtask_views(session, task.id), await repo.list_edges(session, task.id)
    )
    return brief_of(task, dag)


def _subtask_json(
    subtask: repo.SubtaskView,
    upstreams: list[int],
    downstreams: list[int],
    outputs: Sequence[repo.Output],
) -> dict[str, Any]:
    """`SubtaskOut` of one subtask."""
    idx = subtask.parallel_idx
    if outputs:
        context = Context(
            {o.key: o.value for o in outputs if isinstance(o.value, str)},
            {o.key: o.value for o in outputs if isinstance(o.value, list)},
            idx,
        ).as_json()
    else:  # most subtasks publish nothing: skip building a Context
        context = {"listMap": {}, "parallel": idx != -1, "parallelIdx": idx, "stringMap": {}}
    return {
        "id": subtask.id,
        "taskId": subtask.task_id,
        "name": subtask.name,
        "seriesId": subtask.series_id,
        "description": subtask.description,
        "className": subtask.class_name,
        "timeout": subtask.timeout,
        "status": subtask.status,
        "operation": subtask.operation,
        "executor": subtask.executor,
        "runTime": subtask.run_time,
        "context": context,
        "createTime": _format_time(subtask.create_time),
        "startTime": _time(subtask.start_time),
        "finishTime": _time(subtask.finish_time),
        "nodeType": subtask.node_type,
        "parallelIdx": idx,
        "upstreams": upstreams,
        "downstreams": downstreams,
        "prohibitRollback": subtask.prohibit_rollback,
        "errorCode": subtask.error_code,
        "errorMessage": subtask.error_message,
    }


def _prohibits_rollback(subtasks: Iterable[repo.SubtaskView]) -> bool:
    """OCP's rule: a task may not roll back once a subtask that prohibits it has run."""
    return any(s.prohibit_rollback and s.status not in NOT_RUN for s in subtasks)


async def full_task(session: AsyncSession, task: TaskInstance) -> dict[str, Any]:
    """`TaskOut`: the full task with every subtask (GET /api/v2/tasks/instances/{id})."""
    subtasks = await repo.subtask_views(session, task.id)
    upstreams, downstreams = _links(await repo.list_edges(session, task.id))
    outputs: dict[int, list[repo.Output]] = defaultdict(list)
    if task.has_outputs:
        for output in await repo.task_outputs(session, task.id):
            outputs[output.subtask_id].append(output)
    context = Context.load(task.context)
    prohibit = _prohibits_rollback(subtasks) or (
        context.string_map.get("prohibit_rollback", "").lower() == "true"
    )
    return {
        "id": task.id,
        "name": task.name,
        "taskDefinitionId": -1,
        "type": task.type,
        "status": task.status,
        "operation": task.operation,
        "clusterId": task.cluster_id,
        "tenantId": task.tenant_id,
        "hostId": task.host_id,
        "cluster": cluster.model_dump(by_alias=True) if (cluster := _cluster(task)) else None,
        "tenant": None,
        "creator": _creator(task).model_dump(by_alias=True),
        "executor": task.executor,
        "context": context.as_json(),
        "createTime": _format_time(task.create_time),
        "startTime": _time(task.start_time),
        "finishTime": _time(task.finish_time),
        "prohibitRollback": prohibit,
        "subtasks": [
            _subtask_json(s, upstreams[s.id], downstreams[s.id], outputs[s.id]) for s in subtasks
        ],
    }


# ---------------------------------------------------------------- reads


async def list_tasks(
    session: AsyncSession,
    *,
    page: PageRequest,
    access: TaskAccess,
    name: str | None = None,
    statuses: Sequence[TaskStatus] = (),
    types: Sequence[TaskType] = (),
    cluster_id: int | None = None,
    cluster_name: str | None = None,
    tenant_id: int | None = None,
    host_id: int | None = None,
) -> tuple[list[TaskListItem], int]:
    """A page of the tasks the caller may see, filtered as OCP's task list is."""
    where = repo.TaskFilter(
        name=name,
        statuses=[s.value for s in statuses],
        types=[t.value for t in types],
        cluster_id=cluster_id,
        cluster_name=cluster_name,
        tenant_id=tenant_id,
        host_id=host_id,
        within_clusters=access.readable_clusters(),
    )
    tasks, total = await repo.page_tasks(
        session,
        where,
        offset=page.offset,
        limit=page.size,
        sort=[(s.field, s.descending) for s in page.sort],
    )
    by_task: dict[int, list[repo.SubtaskLine]] = defaultdict(list)
    for subtask in await repo.subtasks_of_tasks(session, [t.id for t in tasks]):
        by_task[subtask.task_id].append(subtask)
    items = [
        TaskListItem(
            id=task.id,
            name=task.name,
            type=task.type,
            status=task.status,
            operation=task.operation,
            cluster_id=task.cluster_id,
            cluster=_cluster(task),
            creator=_creator(task),
            executor=task.executor,
            create_time=_format_time(task.create_time),
            start_time=_time(task.start_time),
            finish_time=_time(task.finish_time),
            subtasks=[
                BasicSubtaskOut.model_construct(
                    id=s.id,
                    name=s.name,
                    description=s.description,
                    status=s.status,
                    operation=s.operation,
                )
                for s in by_task[task.id]
            ],
        )
        for task in tasks
    ]
    return items, total


async def get_task(session: AsyncSession, *, task_id: int, access: TaskAccess) -> dict[str, Any]:
    """`TaskOut`, as `full_task`."""
    return await full_task(session, await _task(session, task_id, access))


async def check_readable(session: AsyncSession, *, task_id: int, access: TaskAccess) -> None:
    """Raises unless the task exists and the caller may see it."""
    await _task(session, task_id, access)


async def get_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, access: TaskAccess
) -> dict[str, Any]:
    """`SubtaskOut`, as `_subtask_json`."""
    await _task(session, task_id, access)
    subtask = await repo.get_subtask(session, subtask_id, task_id=task_id)
    if subtask is None:
        raise SubtaskNotFound(task_id, subtask_id)
    return await _render_subtask(session, subtask)


async def _render_subtask(session: AsyncSession, subtask: SubtaskInstance) -> dict[str, Any]:
    upstreams, downstreams = await repo.subtask_neighbours(session, subtask.id)
    outputs = [
        o for o in await repo.task_outputs(session, subtask.task_id) if o.subtask_id == subtask.id
    ]
    return _subtask_json(repo.SubtaskView.of(subtask), upstreams, downstreams, outputs)


async def get_subtask_log(
    session: AsyncSession, *, task_id: int, subtask_id: int, access: TaskAccess
) -> SubtaskLogOut:
    await _task(session, task_id, access)
    if await repo.get_subtask(session, subtask_id, task_id=task_id) is None:
        raise SubtaskNotFound(task_id, subtask_id)
    return SubtaskLogOut(log="\n".join(await repo.subtask_log(session, subtask_id)))


# ---------------------------------------------------------------- operations


async def retry_task(
    session: AsyncSession, *, task_id: int, actor: str, access: TaskAccess, catalog: Catalog
) -> dict[str, Any]:
    await _task(session, task_id, access, acting=True)
    task = await engine.retry_task(session, task_id=task_id, actor=actor, catalog=catalog)
    return await full_task(session, task)


async def rollback_task(
    session: AsyncSession, *, task_id: int, actor: str, access: TaskAccess, catalog: Catalog
) -> dict[str, Any]:
    await _task(session, task_id, access, acting=True)
    task = await engine.rollback_task(session, task_id=task_id, actor=actor, catalog=catalog)
    return await full_task(session, task)


async def retry_subtask(
    session: AsyncSession,
    *,
    task_id: int,
    subtask_id: int,
    actor: str,
    access: TaskAccess,
    catalog: Catalog,
) -> dict[str, Any]:
    await _task(session, task_id, access, acting=True)
    subtask = await engine.retry_subtask(
        session, task_id=task_id, subtask_id=subtask_id, actor=actor, catalog=catalog
    )
    return await _render_subtask(session, subtask)


async def skip_subtask(
    session: AsyncSession,
    *,
    task_id: int,
    subtask_id: int,
    actor: str,
    access: TaskAccess,
    catalog: Catalog,
) -> None:
    await _task(session, task_id, access, acting=True)
    await engine.skip_subtask(
        session, task_id=task_id, subtask_id=subtask_id, actor=actor, catalog=catalog
    )


async def cancel_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, actor: str, access: TaskAccess
) -> None:
    await _task(session, task_id, access, acting=True)
    await engine.cancel_subtask(session, task_id=task_id, subtask_id=subtask_id, actor=actor)
