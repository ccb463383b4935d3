"""OCP's task operations, in the caller's transaction: submitting a task; task retry and
rollback; subtask retry, skip and cancel. Each locks the task row first, so all changes to
one task's subtasks are serialised; `transitions` decides (and refuses what OCP refuses),
and the changes are conditional UPDATEs (`repository.transition_subtasks`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.base import utcnow
from obpilot.engine import repository as repo
from obpilot.engine import transitions
from obpilot.engine.catalog import Catalog
from obpilot.engine.context import Cipher, Context
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.notifier import notify_after_commit
from obpilot.engine.progress import (
    after_rolled_back,
    after_success,
    apply,
    apply_one,
    logged,
    make_ready,
    settle_task,
)
from obpilot.engine.states import (
    SubtaskOperation,
    SubtaskStatus,
    TaskOperation,
    TaskStatus,
    TaskType,
)
from obpilot.engine.template import Template
from obpilot.engine.transitions import OperationPlan, Transition
from obpilot.errors import SubtaskNotFound, TaskNotFound

S = SubtaskStatus
P = ParamSpec("P")
NODE_TYPE = "PYTHON_TASK"


# ---------------------------------------------------------------- submit


@dataclass(frozen=True)
class Submitted:
    """A task just written, with its DAG as written: what the call that submitted it
    answers, without reading any of it back."""

    task: TaskInstance
    dag: repo.DagView


async def submit_task(
    session: AsyncSession,
    template_: Template,
    context: Context,
    *,
    creator_id: int | None,
    creator_name: str | None,
    name: str | None = None,
    cluster_id: int | None = None,
    cluster_name: str | None = None,
    ob_cluster_id: int | None = None,
    tenant_id: int | None = None,
    host_id: int | None = None,
    task_type: TaskType | None = None,
    secret_box: Cipher | None = None,
    executor: str | None = None,
) -> Submitted:
    """Creates the task and all its subtasks in the caller's transaction and returns the
    task (status RUNNING; the first subtasks READY) with its DAG as written. `executor`
    names the instance that accepted it (`Engine.executor`). The local worker pool is woken
    when that transaction commits; other instances find the work by polling."""
    planned = template_.plan(context)
    if not planned:
        raise ValueError(f"template {template_.key!r} gives no subtasks for {context!r}")
    now = utcnow()
    task = await repo.insert_task(
        session,
        TaskInstance(
            name=name or template_.name,
            template=template_.key,
            type=(task_type or template_.type).value,
            status=TaskStatus.RUNNING.value,
            operation=TaskOperation.EXECUTE.value,
            cluster_id=cluster_id,
            cluster_name=cluster_name,
            ob_cluster_id=ob_cluster_id,
            tenant_id=tenant_id,
            host_id=host_id,
            creator_id=creator_id,
            creator_name=creator_name,
            executor=executor,
            context=Context(context.string_map, context.list_map).dump(secret_box),
            version=0,
            start_time=now,
            create_time=now,
            update_time=now,
        ),
    )
    rows = [
        {
            "task_id": task.id,
            "series_id": node.series_id,
            "stage": node.stage,
            "name": node.subtask.name,
            "description": node.subtask.display_description(),
            "class_name": node.subtask.class_name,
            "node_type": NODE_TYPE,
            "status": (S.PENDING if node.upstreams else S.READY).value,
            "operation": SubtaskOperation.EXECUTE.value,
            "run_time": 1,
            "timeout": node.subtask.timeout,
            "parallel_idx": node.parallel_idx,
            "parallel_key": node.parallel_key,
            "prohibit_rollback": not node.subtask.rollbackable,
            "resumable": node.subtask.resumable,
            "upstreams_left": len(node.upstreams),
            "version": 0,
            "create_time": now,
            "update_time": now,
        }
        for node in planned
    ]
    edges = [repo.Edge(parent, node.series_id) for node in planned for parent in node.upstreams]
    dag = await repo.insert_subtasks(session, task.id, rows, edges)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    return Submitted(task, dag)


def _task_alone(
    submit_: Callable[P, Awaitable[Submitted]],
) -> Callable[P, Awaitable[TaskInstance]]:
    async def task_alone(*args: P.args, **kwargs: P.kwargs) -> TaskInstance:
        return (await submit_(*args, **kwargs)).task

    return task_alone


#: `submit_task` for callers that need the task alone.
submit = _task_alone(submit_task)


# ---------------------------------------------------------------- operations


async def _locked_task(session: AsyncSession, task_id: int) -> TaskInstance:
    task = await repo.get_task(session, task_id, for_update=True)
    if task is None:
        raise TaskNotFound(task_id)
    return task


async def _subtask_of(session: AsyncSession, task_id: int, subtask_id: int) -> SubtaskInstance:
    subtask = await repo.get_subtask(session, subtask_id, task_id=task_id)
    if subtask is None:
        raise SubtaskNotFound(task_id, subtask_id)
    return subtask


async def _move_task(session: AsyncSession, task: TaskInstance, plan: OperationPlan) -> None:
    if plan.task is not None:
        await repo.transition_task(session, task, to=plan.task.target, values=plan.task.values)


def _logged(
    subtasks: Iterable[SubtaskInstance], transition: Transition, now: datetime
) -> list[repo.LogLine]:
    return [line for subtask in subtasks for line in logged(subtask, transition, now)]


async def retry_task(
    session: AsyncSession, *, task_id: int, actor: str, catalog: Catalog
) -> TaskInstance:
    """FAILED task: its FAILED subtasks run again (RETRY, runTime + 1); the rest stay."""
    task = await _locked_task(session, task_id)
    subtasks = await repo.list_subtasks(session, task.id)
    plan = transitions.retry_task(task, subtasks, actor, catalog)
    failed = [s for s in subtasks if s.status == S.FAILED]
    now = utcnow()
    await repo.insert_log_lines(session, _logged(failed, plan.subtask, now))
    await apply(session, [s.id for s in failed], plan.subtask)
    await _move_task(session, task, plan)
    await settle_task(session, task, catalog, now=now)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    return task


async def rollback_task(
    session: AsyncSession, *, task_id: int, actor: str, catalog: Catalog
) -> TaskInstance:
    """FAILED task: walks the DAG backwards from the failure, running each subtask's
    rollback; a subtask becomes READY once all its downstreams are undone (PENDING)."""
    task = await _locked_task(session, task_id)
    subtasks = await repo.list_subtasks(session, task.id)
    plan = transitions.rollback_task(task, subtasks, actor)
    now = utcnow()
    for status in (S.SUCCESSFUL, S.FAILED):
        marked = transitions.mark_for_rollback(status)
        await repo.transition_subtasks(
            session,
            task_id=task.id,
            expect=marked.source,
            to=marked.target,
            values=marked.values,
        )
    await _move_task(session, task, plan)
    ready = await repo.rollback_ready_candidates(session, task.id)
    await repo.insert_log_lines(
        session, _logged(await repo.subtasks_by_ids(session, ready), plan.subtask, now)
    )
    await apply(session, ready, plan.subtask)
    await settle_task(session, task, catalog, now=now)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    return task


async def retry_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, actor: str, catalog: Catalog
) -> SubtaskInstance:
    task = await _locked_task(session, task_id)
    subtask = await _subtask_of(session, task_id, subtask_id)
    plan = transitions.retry_subtask(task, subtask, actor, catalog)
    await repo.insert_log_lines(session, logged(subtask, plan.subtask, utcnow()))
    await apply_one(session, subtask.id, plan.subtask, version=subtask.version)
    await _move_task(session, task, plan)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    refreshed = await repo.get_subtask(session, subtask.id)
    assert refreshed is not None
    return refreshed


async def skip_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, actor: str, catalog: Catalog
) -> None:
    """FAILED subtask: counts as done (SUCCESSFUL, SKIP) and its successors run; during a
    rollback it counts as undone (PENDING, ROLLBACK_SKIP) and the rollback goes on."""
    task = await _locked_task(session, task_id)
    subtask = await _subtask_of(session, task_id, subtask_id)
    now = utcnow()
    plan = transitions.skip_subtask(task, subtask, actor, now, catalog)
    await repo.insert_log_lines(session, logged(subtask, plan.subtask, now))
    await apply_one(session, subtask.id, plan.subtask, version=subtask.version)
    await _move_task(session, task, plan)
    if plan.subtask.target == S.PENDING:
        await after_rolled_back(session, task.id, subtask.id)
    else:
        progress = await after_success(session, subtask.id, now=now, executor=None)
        await make_ready(session, progress.runnable)
        await repo.insert_log_lines(session, progress.lines)
    await settle_task(session, task, catalog, now=now)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])


async def cancel_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, actor: str
) -> None:
    """RUNNING subtask: becomes CANCELING; its worker stops the handler and fails it."""
    await _locked_task(session, task_id)
    subtask = await _subtask_of(session, task_id, subtask_id)
    cancel = transitions.cancel_subtask(subtask, actor)
    now = utcnow()
    if not await apply_one(session, subtask.id, cancel, version=subtask.version):
        raise transitions.refused("subtask", "CANCEL", subtask.id, "(changed meanwhile)")
    await repo.insert_log_lines(session, logged(subtask, cancel, now))
    notify_after_commit(session, cancels=[subtask.id], tasks=[task_id])
