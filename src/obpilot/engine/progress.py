"""How a task's DAG moves on, persisted: claims, the end of a run, what a success or an
undone rollback sets in motion, a lost lease, and settling the task. The decisions are
`transitions`'; these apply them in the caller's transaction, which holds the task row
lock (`repository.get_task(..., for_update=True)`), so changes to one task serialise."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine import repository as repo
from obpilot.engine import transitions
from obpilot.engine.catalog import Catalog
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.notifier import notify_after_commit
from obpilot.engine.states import (
    ACTIVE_SUBTASK_STATUSES,
    SubtaskStatus,
    TaskOperation,
    TaskStatus,
)
from obpilot.engine.transitions import Outcome, Transition, Unblock
from obpilot.logging import get_logger

log = get_logger(__name__)

S = SubtaskStatus


class LoggedSubtask(Protocol):
    """A subtask row, or a snapshot of one: what a log line needs of it."""

    @property
    def id(self) -> int: ...

    @property
    def task_id(self) -> int: ...

    @property
    def run_time(self) -> int: ...


def logged(subtask: LoggedSubtask, transition: Transition, now: datetime) -> list[repo.LogLine]:
    """The transition's log line (if it has one), in the subtask's current run."""
    if transition.log is None:
        return []
    content = transitions.log_line(now, transition.log)
    return [repo.LogLine(subtask.task_id, subtask.id, subtask.run_time, content, now)]


async def apply(session: AsyncSession, ids: Collection[int], transition: Transition) -> int:
    """Applies `transition` to the subtasks `ids` (those in its source status); how many."""
    if not ids:
        return 0
    return await repo.transition_subtasks(
        session,
        ids=ids,
        expect=transition.source,
        to=transition.target,
        values=transition.values,
        bump_run_time=transition.new_run,
    )


async def apply_one(
    session: AsyncSession,
    subtask_id: int,
    transition: Transition,
    *,
    version: int | None = None,
    lease_token: str | None = None,
    fence: Mapping[str, object] | None = None,
) -> bool:
    """Applies `transition` to one subtask, fenced by its version, lease token or `fence`
    (columns and the values they must still have)."""
    fenced = dict(fence or {})
    if version is not None:
        fenced["version"] = version
    if lease_token is not None:
        fenced["lease_token"] = lease_token
    return await repo.transition_subtask(
        session,
        subtask_id,
        fence=fenced,
        expect=transition.source,
        to=transition.target,
        values=transition.values,
        bump_run_time=transition.new_run,
    )


# ---------------------------------------------------------------- runs


async def claim(
    session: AsyncSession,
    subtask: repo.SubtaskRef,
    *,
    expect: SubtaskStatus,
    holder: transitions.Holder,
    token: str,
    now: datetime,
    deadline: datetime,
) -> bool:
    """Takes `subtask` for a run under the lease `token`; whether this worker got it."""
    # A ref from the task's DAG (version -1) is a first run: fenced by that instead.
    known = subtask.version >= 0
    first_run = {"run_time": subtask.run_time, "operation": subtask.operation.value}
    return await apply_one(
        session,
        subtask.id,
        transitions.claim(expect, holder=holder, token=token, now=now, deadline=deadline),
        version=subtask.version if known else None,
        fence=None if known else first_run,
    )


async def end_run(
    session: AsyncSession,
    subtask: repo.SubtaskRef,
    token: str,
    outcome: Outcome,
    *,
    executor: str,
    took: float,
    now: datetime,
) -> Transition | None:
    """Records how the run holding `token` ended; None if it no longer owns the subtask.
    A cancel requested meanwhile (CANCELING) decides how it ends."""
    ended = transitions.run_ended(subtask, outcome, executor=executor, took=took, now=now)
    if await apply_one(session, subtask.id, ended, lease_token=token):
        return ended
    row = await repo.get_subtask(session, subtask.id)
    if row is None or row.lease_token != token or row.status != S.CANCELING:
        log.warning("run no longer owns its subtask", subtask_id=subtask.id)
        return None
    ended = transitions.run_ended(
        subtask, outcome, executor=executor, took=took, now=now, canceling=True
    )
    return ended if await apply_one(session, subtask.id, ended, lease_token=token) else None


# Whether a held subtask's executor is gone, and then what becomes of the subtask:
# `transitions.lease_expired`, or `.previous_boot` or `.holder_ended` for one holder.
HolderGone = Callable[[SubtaskInstance, datetime], Transition | None]


async def reap(
    session: AsyncSession,
    task: TaskInstance,
    stale: SubtaskInstance,
    catalog: Catalog,
    *,
    holder_gone: HolderGone,
    now: datetime,
) -> Transition | None:
    """A reaper found `stale` (as it read it) held by an executor that seems gone, which
    `holder_gone` judges on the row as it is now; None if the subtask changed since or its
    holder is there after all."""
    row = await repo.get_subtask(session, stale.id)
    if row is None or row.version != stale.version:
        return None
    reaped = holder_gone(row, now)
    if reaped is None or not await apply_one(session, row.id, reaped, version=row.version):
        return None
    await repo.insert_log_lines(session, logged(row, reaped, now))
    await settle_task(session, task, catalog, now=now)
    notify_after_commit(session, wake_workers=reaped.target == S.READY, tasks=[task.id])
    return reaped


# ---------------------------------------------------------------- successors


@dataclass
class Progress:
    """What a success set in motion: subtasks whose last upstream it was (still PENDING,
    to be claimed at once or made READY with `make_ready`), and log lines to write."""

    runnable: list[repo.SubtaskRef] = field(default_factory=list)
    lines: list[repo.LogLine] = field(default_factory=list)


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
    follow.

    With the task's `dag` (known to be running forward, not rolling back), children are
    known to be PENDING and are not read: one whose only upstream this is completes, one
    with more is counted down unless this was its last; `runnable` then holds refs with
    version -1 (see `SubtaskRef`)."""
    progress = Progress()
    frontier = [subtask_id]
    while frontier:
        below = [child for node in frontier for child in dag.children[node]] if dag else []
        if dag is not None and len(below) == len(set(below)):  # one parent each here
            complete = [
                dag.nodes[child]
                for child in below
                if dag.upstream_count[child] == 1
                or not await repo.count_down_unless_last(session, child)
            ]
            joins = [ref for ref in complete if transitions.is_join(ref.class_name)]
            progress.runnable += [
                ref for ref in complete if not transitions.is_join(ref.class_name)
            ]
            frontier = await _join(session, joins, progress, now=now, executor=executor)
            if len(frontier) < len(joins):  # not as expected: from here on, read the rows
                dag = None
            continue
        found = await repo.children_of(session, frontier)
        children = [child for child in found if child.row.status == S.PENDING]
        waiting = [child for child in children if child.row.upstreams_left > child.parents_among]
        for count in sorted({child.parents_among for child in waiting}):
            ids = [child.row.id for child in waiting if child.parents_among == count]
            await repo.count_down_upstreams(session, ids, count)
        complete = [
            repo.SubtaskRef.of(child.row)
            for child in children
            if child.row.upstreams_left <= child.parents_among
        ]
        joins = [ref for ref in complete if transitions.is_join(ref.class_name)]
        progress.runnable += [ref for ref in complete if not transitions.is_join(ref.class_name)]
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
    joined = transitions.join(executor=executor, now=now)
    for ref in joins:
        if await apply_one(session, ref.id, joined):
            done.append(ref.id)
            header = transitions.run_header(ref.operation, ref.run_time, ref.name, now, None)
            progress.lines.append(repo.LogLine(ref.task_id, ref.id, ref.run_time, header, now))
            progress.lines += logged(ref, joined, now)
    return done


async def make_ready(session: AsyncSession, refs: list[repo.SubtaskRef]) -> int:
    return await apply(session, [ref.id for ref in refs], transitions.UPSTREAMS_DONE)


async def after_rolled_back(session: AsyncSession, task_id: int, subtask_id: int) -> int:
    """A subtask was rolled back (now PENDING): its upstreams whose downstreams are all
    undone become READY to roll back in turn."""
    parents = await repo.parent_ids(session, subtask_id)
    ready = await repo.rollback_ready_candidates(session, task_id, among=parents)
    return await apply(session, ready, transitions.ROLLBACK_REACHED)


# ---------------------------------------------------------------- the task


async def settle_task(
    session: AsyncSession, task: TaskInstance, catalog: Catalog, *, now: datetime
) -> None:
    """Ends a RUNNING task once none of its subtasks is READY, RUNNING or CANCELING, as
    `transitions.settle` says, and runs its template's end hook (found in `catalog`)."""
    if task.status != TaskStatus.RUNNING:
        return
    present = await repo.statuses(session, task.id)
    if not present.isdisjoint(ACTIVE_SUBTASK_STATUSES):
        return
    settlement = transitions.settle(TaskOperation(task.operation), present)
    if settlement.unblock is not None:
        if await _unblock(session, task.id, settlement.unblock):
            notify_after_commit(session, wake_workers=True)
            return
        log.error(settlement.stuck, task_id=task.id)
    ended = await repo.transition_task(
        session, task, to=settlement.status, values={"finish_time": now}
    )
    if not ended:
        return
    notify_after_commit(session, tasks=[task.id])
    await _run_end_hook(session, task, catalog)


async def _unblock(session: AsyncSession, task_id: int, step: Unblock) -> int:
    """How many subtasks `step` made READY."""
    if step is Unblock.NEXT_ROLLBACK:
        ready = await repo.rollback_ready_candidates(session, task_id)
        return await apply(session, ready, transitions.ROLLBACK_REACHED)
    promotable = transitions.promotable(
        await repo.subtask_states(session, task_id), await repo.list_edges(session, task_id)
    )
    return await apply(session, promotable, transitions.UPSTREAMS_DONE)


async def _run_end_hook(session: AsyncSession, task: TaskInstance, catalog: Catalog) -> None:
    definition = catalog.template(task.template) if task.template else None
    if definition is None or definition.on_end is None:
        return
    try:
        async with session.begin_nested():
            await definition.on_end(session, task)
    except Exception:
        log.exception("task end hook failed", task_id=task.id, template=task.template)
