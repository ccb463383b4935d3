"""The engine's decisions, in one place: which status change a subtask or task makes on an
event, as pure functions from (rows, event) to a `Transition` (new status, the columns it
sets, the log line that records it). Nothing here reads or writes the metadb: `progress`
and `service` apply these in their transactions through `repository.transition_subtasks`,
which also refuses any pair that `states.SUBTASK_TRANSITIONS` does not have.

The events: a claim; a run's end (`Outcome`); a holder found gone (its lease expired, or
its instance restarted: `executor_lost`); a Wait node's last upstream succeeding (its
join); a rollback step; OCP's operations (task retry and rollback, subtask retry, skip and
cancel, which also say when OCP refuses them); and settling a task once none of its
subtasks is active."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from obpilot.engine.context import Context
from obpilot.engine.processes import ProcessIdentity
from obpilot.engine.states import (
    HELD_SUBTASK_STATUSES,
    FailureCode,
    SubtaskOperation,
    SubtaskStatus,
    TaskOperation,
    TaskStatus,
)
from obpilot.engine.subtask import WaitNode
from obpilot.errors import SubtaskSkipProhibited, TaskRollbackProhibited, TaskStateInvalid

if TYPE_CHECKING:
    from obpilot.engine.catalog import Catalog
    from obpilot.engine.models import SubtaskInstance, TaskInstance
    from obpilot.engine.repository import Edge, SubtaskRef, SubtaskState

S = SubtaskStatus


@dataclass(frozen=True)
class Transition:
    """A subtask's status change: from `source` (or any of several) to `target`, the other
    columns it sets, whether it starts a new run (runTime + 1), and the line it adds to the
    subtask's log (None: no line)."""

    source: SubtaskStatus | tuple[SubtaskStatus, ...]
    target: SubtaskStatus
    values: Mapping[str, Any] = field(default_factory=dict)
    log: str | None = None
    new_run: bool = False


@dataclass(frozen=True)
class TaskTransition:
    """The task row's change (from its current status) to `target`."""

    target: TaskStatus
    values: Mapping[str, Any]


@dataclass(frozen=True)
class OperationPlan:
    """What one of OCP's operations does: the operated subtasks' change, and the task's
    (None: the task stays as it is)."""

    subtask: Transition
    task: TaskTransition | None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def log_line(moment: datetime, message: str) -> str:
    return f"{stamp(moment)} {message}"


def is_join(class_name: str) -> bool:
    return class_name == WaitNode.class_name


def _failed(now: datetime, code: str | None, message: str) -> dict[str, Any]:
    return {"finish_time": now, "error_code": code, "error_message": message}


_LEASE_RELEASED = {
    "lease_token": None,
    "lease_deadline": None,
    "lease_host": None,
    "lease_boot": None,
    "lease_machine": None,
    "lease_pid": None,
    "lease_pid_started": None,
}


# ---------------------------------------------------------------- claims and runs


def run_header(
    operation: SubtaskOperation, run_time: int, name: str, now: datetime, executor: str | None
) -> str:
    """The first line of a run's log (`{EXECUTE}{<time>} runTime=1 executor=<who> <name>`)."""
    by = f"executor={executor} " if executor is not None else ""
    return f"{{{operation.value}}}{{{stamp(now)}}} runTime={run_time} {by}{name}"


@dataclass(frozen=True)
class Holder:
    """Who takes leases: instance `executor` (its name: unique among live instances, the
    same across restarts) on machine `host`, in its process `boot` (fresh at each start),
    which is `process` on its machine (None where /proc cannot tell). The machine keeps
    instances of one name on two machines (a default name such as 0.0.0.0:8080) from
    taking each other's subtasks as their own previous boot's."""

    executor: str
    host: str
    boot: str
    process: ProcessIdentity | None = None


def claim(
    source: SubtaskStatus, *, holder: Holder, token: str, now: datetime, deadline: datetime
) -> Transition:
    """A worker takes a subtask: READY (or PENDING, when the same worker just finished its
    last upstream) -> RUNNING under a fresh lease, held by `holder`."""
    return Transition(
        source,
        S.RUNNING,
        {
            "upstreams_left": 0,
            "executor": holder.executor,
            "lease_token": token,
            "lease_deadline": deadline,
            "lease_host": holder.host,
            "lease_boot": holder.boot,
            "lease_machine": holder.process.machine if holder.process else None,
            "lease_pid": holder.process.pid if holder.process else None,
            "lease_pid_started": holder.process.started if holder.process else None,
            "start_time": now,
            "finish_time": None,
            "error_code": None,
            "error_message": None,
        },
    )


class OutcomeKind(Enum):
    SUCCESS = auto()
    FAILURE = auto()  # the handler raised
    CANCELLED = auto()  # stopped on a cancel request
    TIMEOUT = auto()  # ran longer than its class's timeout
    LOST = auto()  # its lease was lost: another holder decides now
    SHUTDOWN = auto()  # this executor is shutting down


@dataclass(frozen=True)
class Outcome:
    """How a handler run ended."""

    kind: OutcomeKind
    message: str = ""
    code: str | None = None


def run_ended(
    subtask: SubtaskRef,
    outcome: Outcome,
    *,
    executor: str,
    took: float,
    now: datetime,
    canceling: bool = False,
) -> Transition:
    """A run ended (RUNNING, or CANCELING once a cancel was requested). A cancel that came
    first decides over a success (the run's work is not trusted) and over a hand-back
    (CANCELING -> READY does not exist). A LOST run records nothing: do not ask."""
    kind = outcome.kind
    if kind is OutcomeKind.LOST:
        raise ValueError("a run that lost its lease records nothing")
    if canceling and (
        kind is OutcomeKind.SUCCESS or (kind is OutcomeKind.SHUTDOWN and subtask.resumable)
    ):
        kind = OutcomeKind.CANCELLED
    source = S.CANCELING if canceling else S.RUNNING
    target: SubtaskStatus
    new_run = False
    if kind is OutcomeKind.SUCCESS:
        values: dict[str, Any] = {"finish_time": now}
        if subtask.operation == SubtaskOperation.ROLLBACK:
            target, message = S.PENDING, "rollback finished: undone"
        else:
            target, message = S.SUCCESSFUL, f"finished successfully in {took:.3f} s"
    elif kind is OutcomeKind.SHUTDOWN and subtask.resumable:
        target, values, new_run = S.READY, {"finish_time": None}, True
        message = (
            f"handed back: executor {executor} is shutting down; "
            "the subtask resumes on the next free worker"
        )
    else:
        target = S.FAILED
        failure = _as_recorded(kind, outcome, subtask, executor)
        values = _failed(now, failure.code, failure.message)
        message = f"failed: {failure.message}" if kind is OutcomeKind.FAILURE else failure.message
    return Transition(source, target, {**values, **_LEASE_RELEASED}, message, new_run)


def _as_recorded(
    kind: OutcomeKind, outcome: Outcome, subtask: SubtaskRef, executor: str
) -> Outcome:
    """A run that ended FAILED, with the error code and message it records."""
    if kind is OutcomeKind.SHUTDOWN:
        return Outcome(
            kind,
            f"interrupted ({FailureCode.INTERRUPTED}): executor {executor} shut down "
            "before the subtask finished, and it cannot resume; retry it",
            FailureCode.INTERRUPTED,
        )
    if kind is OutcomeKind.CANCELLED:
        message = f"cancelled ({FailureCode.CANCELLED}); the handler stopped"
        return Outcome(kind, message, FailureCode.CANCELLED)
    if kind is OutcomeKind.TIMEOUT:
        return Outcome(
            kind,
            f"timed out after {subtask.timeout} s ({FailureCode.TIMEOUT}); the handler was stopped",
            FailureCode.TIMEOUT,
        )
    return Outcome(kind, outcome.message or "failed", outcome.code)


def lease_expired(row: SubtaskInstance, now: datetime) -> Transition | None:
    """A reaper found a held subtask whose lease expired at `now` (None: it is not held,
    or its lease is still live): see `executor_lost`."""
    if row.status not in HELD_SUBTASK_STATUSES:
        return None
    if row.lease_deadline is not None and row.lease_deadline >= now:
        return None
    expired_at = stamp(row.lease_deadline) if row.lease_deadline else "(never set)"
    return executor_lost(row, f"its lease expired at {expired_at}", now)


def previous_boot(row: SubtaskInstance, now: datetime, *, holder: Holder) -> Transition | None:
    """`holder` found a subtask held by an earlier boot of its instance (None: it is not
    held, or not by that): that process is gone, however long its lease still runs
    (instance names are unique among live instances), so the subtask is taken back at
    once, as `executor_lost` says."""
    if row.status not in HELD_SUBTASK_STATUSES:
        return None
    if (row.executor, row.lease_host) != (holder.executor, holder.host):
        return None
    if row.lease_boot == holder.boot:
        return None
    return executor_lost(row, "it restarted", now)


def lease_process(row: SubtaskInstance) -> ProcessIdentity | None:
    """The process that holds `row`'s lease, where the claim recorded it."""
    if row.lease_machine is None or row.lease_pid is None or row.lease_pid_started is None:
        return None
    return ProcessIdentity(row.lease_machine, row.lease_pid, row.lease_pid_started)


def holder_ended(
    row: SubtaskInstance, now: datetime, *, holder: Holder, ended: frozenset[ProcessIdentity]
) -> Transition | None:
    """`holder` found, on its own machine, a subtask whose holding process is among those
    it saw `ended` (None: not held, not on this machine, this boot's own, or its holder
    still runs): that subtask is taken back at once, whatever the instance's name, as
    `executor_lost` says."""
    process = lease_process(row)
    if row.status not in HELD_SUBTASK_STATUSES or process is None or holder.process is None:
        return None
    if process.machine != holder.process.machine or row.lease_boot == holder.boot:
        return None
    if process not in ended:
        return None
    return executor_lost(row, f"its process (pid {process.pid}) on this machine ended", now)


def executor_lost(row: SubtaskInstance, why: str, now: datetime) -> Transition:
    """A held subtask's executor is gone (`why`): a cancel in progress ends cancelled, a
    resumable subtask is READY again (a new run), others fail with "executor lost", which
    a retry clears."""
    lost = f"executor {row.executor} lost: {why}"
    source = S(row.status)
    if source == S.CANCELING:
        message = f"cancelled ({FailureCode.CANCELLED}); {lost}"
        values = _failed(now, FailureCode.CANCELLED, message)
        return Transition(source, S.FAILED, {**values, **_LEASE_RELEASED}, message)
    if row.resumable:
        message = f"{lost}; the subtask can resume, so it is READY again"
        values = {"finish_time": None, **_LEASE_RELEASED}
        return Transition(source, S.READY, values, message, new_run=True)
    message = (
        f"{lost} ({FailureCode.EXECUTOR_LOST}) while the subtask was running; "
        "it cannot resume on its own: retry it to run it again"
    )
    values = _failed(now, FailureCode.EXECUTOR_LOST, message)
    return Transition(source, S.FAILED, {**values, **_LEASE_RELEASED}, message)


# ---------------------------------------------------------------- the DAG moving on


# Every upstream succeeded: the subtask may run.
UPSTREAMS_DONE = Transition(S.PENDING, S.READY, {"upstreams_left": 0})

# A rollback reached the subtask (all its downstreams are undone): its rollback may run.
ROLLBACK_REACHED = Transition(
    (S.SUCCESSFUL, S.FAILED),
    S.READY,
    {"error_code": None, "error_message": None, "lease_token": None},
    new_run=True,
)


def join(*, executor: str | None, now: datetime) -> Transition:
    """A Wait node's last upstream succeeded: the join completes on the spot."""
    return Transition(
        S.PENDING,
        S.SUCCESSFUL,
        {"upstreams_left": 0, "executor": executor, "start_time": now, "finish_time": now},
        "every upstream succeeded: joined",
    )


def promotable(subtasks: Sequence[SubtaskState], edges: Iterable[Edge]) -> list[int]:
    """PENDING subtasks whose upstreams all succeeded: the safety net for a task with
    pending subtasks and nothing active (the upstream counters normally suffice)."""
    status = {subtask.id: subtask.status for subtask in subtasks}
    blocked = {edge.child for edge in edges if status.get(edge.parent) != S.SUCCESSFUL}
    return [s.id for s in subtasks if s.status == S.PENDING and s.id not in blocked]


class Unblock(Enum):
    """A step that may find more work for a task that has none active."""

    NEXT_ROLLBACK = auto()  # make the next subtasks of the rollback READY
    REPAIR_PROMOTIONS = auto()  # make READY what `promotable` finds


@dataclass(frozen=True)
class Settlement:
    """How a RUNNING task with no active subtask ends: `status`, unless `unblock` finds
    work (then it keeps running); `stuck` says why it failed when that finds none."""

    status: TaskStatus
    unblock: Unblock | None = None
    stuck: str = ""


def settle(operation: TaskOperation, present: Collection[str]) -> Settlement:
    """A RUNNING task none of whose subtasks is READY, RUNNING or CANCELING (`present`:
    the statuses its subtasks have): FAILED if one failed, SUCCESSFUL if all succeeded
    (all undone, for a rollback)."""
    if S.FAILED in present:
        return Settlement(TaskStatus.FAILED)
    if operation == TaskOperation.ROLLBACK:
        if set(present) <= {S.PENDING.value}:
            return Settlement(TaskStatus.SUCCESSFUL)
        return Settlement(TaskStatus.FAILED, Unblock.NEXT_ROLLBACK, "rollback cannot proceed")
    if set(present) <= {S.SUCCESSFUL.value}:
        return Settlement(TaskStatus.SUCCESSFUL)
    return Settlement(
        TaskStatus.FAILED,
        Unblock.REPAIR_PROMOTIONS,
        "task has pending subtasks that can never run",
    )


# ---------------------------------------------------------------- OCP's operations


def refused(what: str, operation: str, object_id: int, state: str) -> TaskStateInvalid:
    return TaskStateInvalid(
        f"Operation {operation} is not allowed for {what} {object_id} in state {state}"
    )


def reopen(task: TaskInstance, operation: TaskOperation) -> TaskTransition | None:
    """An operation on a FAILED task's subtask sets the task RUNNING again."""
    if task.status != TaskStatus.FAILED:
        return None
    return TaskTransition(TaskStatus.RUNNING, {"operation": operation.value, "finish_time": None})


def _retried(log: str) -> Transition:
    return Transition(
        S.FAILED,
        S.READY,
        {
            "operation": SubtaskOperation.RETRY.value,
            "error_code": None,
            "error_message": None,
            "finish_time": None,
            **_LEASE_RELEASED,
        },
        log,
        new_run=True,
    )


def _retryable(subtask: SubtaskInstance, catalog: Catalog) -> bool:
    cls = catalog.subtask_class(subtask.class_name)
    return cls is None or cls.retryable


def retry_task(
    task: TaskInstance, subtasks: Sequence[SubtaskInstance], actor: str, catalog: Catalog
) -> OperationPlan:
    """A FAILED task: its FAILED subtasks run again (RETRY, runTime + 1); the rest stay.
    Refused after a failed rollback, and when a failed subtask does not allow retry."""
    if task.status != TaskStatus.FAILED:
        raise refused("task", "RETRY", task.id, task.status)
    if task.operation == TaskOperation.ROLLBACK:
        raise TaskStateInvalid(
            f"Operation RETRY is not allowed for task {task.id} in state {task.status} with "
            "operation ROLLBACK (a rollback failed): roll the task back again, or skip the "
            "failed subtask"
        )
    for subtask in subtasks:
        if subtask.status == S.FAILED and not _retryable(subtask, catalog):
            raise TaskStateInvalid(
                f"Task {task.id} cannot be retried: subtask {subtask.id} ({subtask.name}) "
                "does not allow retry; skip it or roll the task back"
            )
    return OperationPlan(
        _retried(f"retry of task {task.id} requested by {actor}"),
        reopen(task, TaskOperation.RETRY),
    )


def rollback_task(
    task: TaskInstance, subtasks: Sequence[SubtaskInstance], actor: str
) -> OperationPlan:
    """A FAILED task walks its DAG backwards from the failure: a subtask becomes READY to
    roll back once its downstreams are all undone (PENDING). Refused when the task's
    context prohibits it, or once a subtask that prohibits it has run."""
    if task.status != TaskStatus.FAILED:
        raise refused("task", "ROLLBACK", task.id, task.status)
    if Context.load(task.context).string_map.get("prohibit_rollback", "").lower() == "true":
        raise TaskRollbackProhibited(f"Task {task.id} prohibits rollback (prohibit_rollback)")
    prohibiting = sorted(
        {s.name for s in subtasks if s.prohibit_rollback and s.status not in (S.PENDING, S.READY)}
    )
    if prohibiting:
        raise TaskRollbackProhibited(
            f"Task {task.id} cannot be rolled back: subtask(s) {', '.join(prohibiting)} "
            "do not allow it"
        )
    return OperationPlan(
        replace(ROLLBACK_REACHED, log=f"rollback of task {task.id} requested by {actor}"),
        reopen(task, TaskOperation.ROLLBACK),
    )


def mark_for_rollback(status: SubtaskStatus) -> Transition:
    """Subtasks that ran (SUCCESSFUL or FAILED) are marked: the rollback will undo them."""
    return Transition(status, status, {"operation": SubtaskOperation.ROLLBACK.value})


def retry_subtask(
    task: TaskInstance, subtask: SubtaskInstance, actor: str, catalog: Catalog
) -> OperationPlan:
    if subtask.status != S.FAILED:
        raise refused("subtask", "RETRY", subtask.id, subtask.status)
    if subtask.operation == SubtaskOperation.ROLLBACK:
        raise TaskStateInvalid(
            f"Operation RETRY is not allowed for subtask {subtask.id} in state FAILED with "
            "operation ROLLBACK (its rollback failed): roll the task back again, or skip it"
        )
    if not _retryable(subtask, catalog):
        raise TaskStateInvalid(f"Subtask {subtask.id} ({subtask.name}) does not allow retry")
    return OperationPlan(
        _retried(f"retry of subtask {subtask.id} requested by {actor}"),
        reopen(task, TaskOperation.RETRY),
    )


def skip_subtask(
    task: TaskInstance, subtask: SubtaskInstance, actor: str, now: datetime, catalog: Catalog
) -> OperationPlan:
    """A FAILED subtask counts as done (SUCCESSFUL, SKIP) and its successors run; during a
    rollback it counts as undone (PENDING, ROLLBACK_SKIP) and the rollback goes on."""
    if subtask.status != S.FAILED:
        raise refused("subtask", "SKIP", subtask.id, subtask.status)
    cls = catalog.subtask_class(subtask.class_name)
    if cls is not None and not cls.skippable:
        raise SubtaskSkipProhibited(f"Subtask {subtask.id} ({subtask.name}) cannot be skipped")
    if task.operation == TaskOperation.ROLLBACK:
        return OperationPlan(
            Transition(
                S.FAILED,
                S.PENDING,
                {"operation": SubtaskOperation.ROLLBACK_SKIP.value, "finish_time": now},
                f"rollback skipped by {actor}",
            ),
            reopen(task, TaskOperation.ROLLBACK),
        )
    return OperationPlan(
        Transition(
            S.FAILED,
            S.SUCCESSFUL,
            {"operation": SubtaskOperation.SKIP.value, "finish_time": now},
            f"skipped by {actor}",
        ),
        reopen(task, TaskOperation(task.operation)),
    )


def cancel_subtask(subtask: SubtaskInstance, actor: str) -> Transition:
    """A RUNNING subtask becomes CANCELING; its worker stops the handler and fails it. A
    rollback being cancelled keeps its ROLLBACK operation."""
    if subtask.status != S.RUNNING:
        raise refused("subtask", "CANCEL", subtask.id, subtask.status)
    values = {}
    if subtask.operation != SubtaskOperation.ROLLBACK:
        values["operation"] = SubtaskOperation.CANCEL.value
    return Transition(S.RUNNING, S.CANCELING, values, f"cancel requested by {actor}")
