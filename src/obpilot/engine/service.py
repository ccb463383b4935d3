"""Engine rules: submitting a task, deriving a task's status from its subtasks, and OCP's
operations (task retry and rollback; subtask retry, skip and cancel).

Every function works in the caller's transaction and locks the task row first, so all
changes to one task's subtasks are serialised; the transitions themselves are
conditional UPDATEs (`repository.transition_subtasks`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.base import utcnow
from obpilot.engine import repository as repo
from obpilot.engine.context import Cipher, Context
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.notifier import notify_after_commit
from obpilot.engine.states import (
    ACTIVE_SUBTASK_STATUSES,
    SubtaskOperation,
    SubtaskStatus,
    TaskOperation,
    TaskStatus,
    TaskType,
)
from obpilot.engine.subtask import WaitNode, subtask_class
from obpilot.engine.template import Template, template
from obpilot.errors import (
    SubtaskNotFound,
    SubtaskSkipProhibited,
    TaskNotFound,
    TaskRollbackProhibited,
    TaskStateInvalid,
)
from obpilot.logging import get_logger

log = get_logger(__name__)

S = SubtaskStatus
Sub = SubtaskInstance
NODE_TYPE = "PYTHON_TASK"


class _LocalInstance:
    """The name of this process's worker pool, recorded as a new task's `executor`."""

    name: str | None = None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def log_line(moment: datetime, message: str) -> str:
    return f"{stamp(moment)} {message}"


# ---------------------------------------------------------------- submit


async def submit(
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
) -> TaskInstance:
    """Creates the task and all its subtasks in the caller's transaction and returns the
    task (status RUNNING; the first subtasks READY). The local worker pool is woken when
    that transaction commits; other instances find the work by polling."""
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
            executor=_LocalInstance.name,
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
    edges = [(parent, node.series_id) for node in planned for parent in node.upstreams]
    await repo.insert_subtasks(session, task.id, rows, edges)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    return task


# ---------------------------------------------------------------- progress


@dataclass
class Progress:
    """What a success set in motion: subtasks whose last upstream it was (still PENDING,
    to be claimed at once or made READY with `make_ready`), and log lines to write."""

    runnable: list[repo.SubtaskRef] = field(default_factory=list)
    lines: list[repo.LogLine] = field(default_factory=list)


def _is_join(row: SubtaskInstance) -> bool:
    return row.class_name == WaitNode.class_name


async def after_success(
    session: AsyncSession,
    subtask_id: int,
    *,
    now: datetime,
    executor: str | None,
    dag: repo.Dag | None = None,
) -> Progress:
    """A subtask succeeded (or was skipped): counts it off its children. A Wait node whose
    last upstream it was is only a join: it completes on the spot and its own children
    follow. The caller holds the task row lock.

    With the task's `dag` (known to be running forward, not rolling back), children that
    have this subtask as their only upstream are known to be PENDING and complete without
    reading them; `runnable` then holds refs with version -1 (see `SubtaskRef`)."""
    progress = Progress()
    frontier = [subtask_id]
    while frontier:
        if dag is not None and all(
            dag.upstream_count[child] == 1 for node in frontier for child in dag.children[node]
        ):
            complete = [dag.nodes[child] for node in frontier for child in dag.children[node]]
            joins = [ref for ref in complete if ref.class_name == WaitNode.class_name]
            progress.runnable += [ref for ref in complete if ref.class_name != WaitNode.class_name]
            frontier = await _join(session, joins, progress, now=now, executor=executor)
            if len(frontier) < len(joins):  # not as expected: from here on, read the rows
                dag = None
            continue
        found = await repo.children_of(session, frontier)
        children = [(row, n) for row, n in found if row.status == S.PENDING]
        waiting = [(row, n) for row, n in children if row.upstreams_left > n]
        for count in sorted({n for _, n in waiting}):
            ids = [row.id for row, n in waiting if n == count]
            await repo.count_down_upstreams(session, ids, count)
        complete_rows = [row for row, n in children if row.upstreams_left <= n]
        progress.runnable += [repo.SubtaskRef.of(row) for row in complete_rows if not _is_join(row)]
        joins = [repo.SubtaskRef.of(row) for row in complete_rows if _is_join(row)]
        frontier = await _join(session, joins, progress, now=now, executor=executor)
    return progress


async def _join(
    session: AsyncSession,
    joins: list[repo.SubtaskRef],
    progress: Progress,
    *,
    now: datetime,
    executor: str | None,
) -> list[int]:
    """Completes Wait nodes whose last upstream succeeded; returns those it completed."""
    done: list[int] = []
    for ref in joins:
        if await repo.transition_subtask(
            session,
            ref.id,
            expect=S.PENDING,
            to=S.SUCCESSFUL,
            values={
                "upstreams_left": 0,
                "executor": executor,
                "start_time": now,
                "finish_time": now,
            },
        ):
            done.append(ref.id)
            header = f"{{{ref.operation}}}{{{stamp(now)}}} runTime={ref.run_time} {ref.name}"
            progress.lines += [
                repo.LogLine(ref.task_id, ref.id, ref.run_time, header, now),
                repo.LogLine(
                    ref.task_id,
                    ref.id,
                    ref.run_time,
                    log_line(now, "every upstream succeeded: joined"),
                    now,
                ),
            ]
    return done


async def make_ready(session: AsyncSession, refs: list[repo.SubtaskRef]) -> int:
    if not refs:
        return 0
    return await repo.transition_subtasks(
        session,
        Sub.id.in_([ref.id for ref in refs]),
        expect=S.PENDING,
        to=S.READY,
        values={"upstreams_left": 0},
    )


async def after_rolled_back(session: AsyncSession, task_id: int, subtask_id: int) -> int:
    """A subtask was rolled back (now PENDING): its upstreams whose downstreams are all
    undone become READY to roll back in turn."""
    parents = await repo.parent_ids(session, subtask_id)
    ready = await repo.rollback_ready_candidates(session, task_id, among=parents)
    return await _ready_for_rollback(session, ready)


async def _ready_for_rollback(session: AsyncSession, ids: list[int]) -> int:
    if not ids:
        return 0
    return await repo.transition_subtasks(
        session,
        Sub.id.in_(ids),
        expect=(S.SUCCESSFUL, S.FAILED),
        to=S.READY,
        values={"error_code": None, "error_message": None, "lease_token": None},
        bump_run_time=True,
    )


async def settle_task(session: AsyncSession, task: TaskInstance, *, now: datetime) -> None:
    """Derives a RUNNING task's status from its subtasks once none is READY, RUNNING or
    CANCELING: FAILED if one failed, SUCCESSFUL if all succeeded (all undone, for a
    rollback). The caller holds the task row lock."""
    if task.status != TaskStatus.RUNNING:
        return
    active = [s.value for s in ACTIVE_SUBTASK_STATUSES]
    if await repo.any_subtask(session, task.id, status_in=active):
        return
    rolling_back = task.operation == TaskOperation.ROLLBACK
    present = await repo.statuses(session, task.id)
    outcome: TaskStatus
    if S.FAILED in present:
        outcome = TaskStatus.FAILED
    elif rolling_back:
        if present <= {S.PENDING.value}:
            outcome = TaskStatus.SUCCESSFUL
        elif await _ready_for_rollback(
            session, await repo.rollback_ready_candidates(session, task.id)
        ):
            notify_after_commit(session, wake_workers=True)
            return
        else:
            log.error("rollback cannot proceed", task_id=task.id)
            outcome = TaskStatus.FAILED
    elif present <= {S.SUCCESSFUL.value}:
        outcome = TaskStatus.SUCCESSFUL
    elif await repo.repair_promotions(session, task.id):
        notify_after_commit(session, wake_workers=True)
        return
    else:
        log.error("task has pending subtasks that can never run", task_id=task.id)
        outcome = TaskStatus.FAILED
    if not await repo.transition_task(session, task, to=outcome, values={"finish_time": now}):
        return
    notify_after_commit(session, tasks=[task.id])
    await _run_end_hook(session, task)


async def _run_end_hook(session: AsyncSession, task: TaskInstance) -> None:
    definition = template(task.template) if task.template else None
    if definition is None or definition.on_end is None:
        return
    try:
        async with session.begin_nested():
            await definition.on_end(session, task)
    except Exception:
        log.exception("task end hook failed", task_id=task.id, template=task.template)


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


def _not_allowed(what: str, operation: str, object_id: int, state: str) -> TaskStateInvalid:
    return TaskStateInvalid(
        f"Operation {operation} is not allowed for {what} {object_id} in state {state}"
    )


def _note(subtask: SubtaskInstance, moment: datetime, message: str) -> repo.LogLine:
    return repo.LogLine(
        subtask.task_id, subtask.id, subtask.run_time, log_line(moment, message), moment
    )


async def _reopen(session: AsyncSession, task: TaskInstance, operation: TaskOperation) -> None:
    if task.status == TaskStatus.FAILED:
        await repo.transition_task(
            session,
            task,
            to=TaskStatus.RUNNING,
            values={"operation": operation.value, "finish_time": None},
        )


async def retry_task(session: AsyncSession, *, task_id: int, actor: str) -> TaskInstance:
    """FAILED task: its FAILED subtasks run again (RETRY, runTime + 1); the rest stay."""
    task = await _locked_task(session, task_id)
    if task.status != TaskStatus.FAILED:
        raise _not_allowed("task", "RETRY", task.id, task.status)
    if task.operation == TaskOperation.ROLLBACK:
        raise TaskStateInvalid(
            f"Operation RETRY is not allowed for task {task.id} in state {task.status} with "
            "operation ROLLBACK (a rollback failed): roll the task back again, or skip the "
            "failed subtask"
        )
    subtasks = await repo.list_subtasks(session, task.id)
    failed = [s for s in subtasks if s.status == S.FAILED]
    for subtask in failed:
        cls = subtask_class(subtask.class_name)
        if cls is not None and not cls.retryable:
            raise TaskStateInvalid(
                f"Task {task.id} cannot be retried: subtask {subtask.id} ({subtask.name}) "
                "does not allow retry; skip it or roll the task back"
            )
    now = utcnow()
    await repo.insert_log_lines(
        session, [_note(s, now, f"retry of task {task.id} requested by {actor}") for s in failed]
    )
    if failed:
        await repo.transition_subtasks(
            session,
            Sub.id.in_([s.id for s in failed]),
            expect=S.FAILED,
            to=S.READY,
            values=_cleared(SubtaskOperation.RETRY),
            bump_run_time=True,
        )
    await repo.transition_task(
        session,
        task,
        to=TaskStatus.RUNNING,
        values={"operation": TaskOperation.RETRY.value, "finish_time": None},
    )
    await settle_task(session, task, now=now)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    return task


def _cleared(operation: SubtaskOperation) -> dict[str, object]:
    return {
        "operation": operation.value,
        "error_code": None,
        "error_message": None,
        "lease_token": None,
        "lease_deadline": None,
        "finish_time": None,
    }


async def rollback_task(session: AsyncSession, *, task_id: int, actor: str) -> TaskInstance:
    """FAILED task: walks the DAG backwards from the failure, running each subtask's
    rollback; a subtask becomes READY once all its downstreams are undone (PENDING)."""
    task = await _locked_task(session, task_id)
    if task.status != TaskStatus.FAILED:
        raise _not_allowed("task", "ROLLBACK", task.id, task.status)
    if Context.load(task.context).string_map.get("prohibit_rollback", "").lower() == "true":
        raise TaskRollbackProhibited(f"Task {task.id} prohibits rollback (prohibit_rollback)")
    if await repo.prohibits_rollback(session, task.id):
        names = sorted(
            {
                s.name
                for s in await repo.list_subtasks(session, task.id)
                if s.prohibit_rollback and s.status not in (S.PENDING, S.READY)
            }
        )
        raise TaskRollbackProhibited(
            f"Task {task.id} cannot be rolled back: subtask(s) {', '.join(names)} do not allow it"
        )
    now = utcnow()
    for status in (S.SUCCESSFUL, S.FAILED):
        await repo.transition_subtasks(
            session,
            Sub.task_id == task.id,
            expect=status,
            to=status,
            values={"operation": SubtaskOperation.ROLLBACK.value},
        )
    await repo.transition_task(
        session,
        task,
        to=TaskStatus.RUNNING,
        values={"operation": TaskOperation.ROLLBACK.value, "finish_time": None},
    )
    ready = await repo.rollback_ready_candidates(session, task.id)
    for subtask in await repo.subtasks_by_ids(session, ready):
        await repo.insert_log_lines(
            session, [_note(subtask, now, f"rollback of task {task.id} requested by {actor}")]
        )
    await _ready_for_rollback(session, ready)
    await settle_task(session, task, now=now)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    return task


async def retry_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, actor: str
) -> SubtaskInstance:
    task = await _locked_task(session, task_id)
    subtask = await _subtask_of(session, task_id, subtask_id)
    if subtask.status != S.FAILED:
        raise _not_allowed("subtask", "RETRY", subtask.id, subtask.status)
    if subtask.operation == SubtaskOperation.ROLLBACK:
        raise TaskStateInvalid(
            f"Operation RETRY is not allowed for subtask {subtask.id} in state FAILED with "
            "operation ROLLBACK (its rollback failed): roll the task back again, or skip it"
        )
    cls = subtask_class(subtask.class_name)
    if cls is not None and not cls.retryable:
        raise TaskStateInvalid(f"Subtask {subtask.id} ({subtask.name}) does not allow retry")
    now = utcnow()
    await repo.insert_log_lines(
        session, [_note(subtask, now, f"retry of subtask {subtask.id} requested by {actor}")]
    )
    await repo.transition_subtask(
        session,
        subtask.id,
        expect=S.FAILED,
        version=subtask.version,
        to=S.READY,
        values=_cleared(SubtaskOperation.RETRY),
        bump_run_time=True,
    )
    await _reopen(session, task, TaskOperation.RETRY)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])
    refreshed = await repo.get_subtask(session, subtask.id)
    assert refreshed is not None
    return refreshed


async def skip_subtask(session: AsyncSession, *, task_id: int, subtask_id: int, actor: str) -> None:
    """FAILED subtask: counts as done (SUCCESSFUL, SKIP) and its successors run; during a
    rollback it counts as undone (PENDING, ROLLBACK_SKIP) and the rollback goes on."""
    task = await _locked_task(session, task_id)
    subtask = await _subtask_of(session, task_id, subtask_id)
    if subtask.status != S.FAILED:
        raise _not_allowed("subtask", "SKIP", subtask.id, subtask.status)
    cls = subtask_class(subtask.class_name)
    if cls is not None and not cls.skippable:
        raise SubtaskSkipProhibited(f"Subtask {subtask.id} ({subtask.name}) cannot be skipped")
    now = utcnow()
    rolling_back = task.operation == TaskOperation.ROLLBACK
    await repo.insert_log_lines(
        session,
        [_note(subtask, now, f"{'rollback ' if rolling_back else ''}skipped by {actor}")],
    )
    if rolling_back:
        await repo.transition_subtask(
            session,
            subtask.id,
            expect=S.FAILED,
            version=subtask.version,
            to=S.PENDING,
            values={"operation": SubtaskOperation.ROLLBACK_SKIP.value, "finish_time": now},
        )
        await _reopen(session, task, TaskOperation.ROLLBACK)
        await after_rolled_back(session, task.id, subtask.id)
    else:
        await repo.transition_subtask(
            session,
            subtask.id,
            expect=S.FAILED,
            version=subtask.version,
            to=S.SUCCESSFUL,
            values={"operation": SubtaskOperation.SKIP.value, "finish_time": now},
        )
        await _reopen(session, task, TaskOperation(task.operation))
        progress = await after_success(session, subtask.id, now=now, executor=None)
        await make_ready(session, progress.runnable)
        await repo.insert_log_lines(session, progress.lines)
    await settle_task(session, task, now=now)
    notify_after_commit(session, wake_workers=True, tasks=[task.id])


async def cancel_subtask(
    session: AsyncSession, *, task_id: int, subtask_id: int, actor: str
) -> None:
    """RUNNING subtask: becomes CANCELING; its worker stops the handler and fails it."""
    await _locked_task(session, task_id)
    subtask = await _subtask_of(session, task_id, subtask_id)
    if subtask.status != S.RUNNING:
        raise _not_allowed("subtask", "CANCEL", subtask.id, subtask.status)
    now = utcnow()
    values = {}
    if subtask.operation != SubtaskOperation.ROLLBACK:
        values["operation"] = SubtaskOperation.CANCEL.value
    moved = await repo.transition_subtask(
        session,
        subtask.id,
        expect=S.RUNNING,
        version=subtask.version,
        to=S.CANCELING,
        values=values,
    )
    if not moved:
        raise _not_allowed("subtask", "CANCEL", subtask.id, "(changed meanwhile)")
    await repo.insert_log_lines(session, [_note(subtask, now, f"cancel requested by {actor}")])
    notify_after_commit(session, cancels=[subtask.id], tasks=[task_id])
