"""OCP's task and subtask statuses and operations, and which subtask status changes exist.

Every change of a subtask's status goes through `repository.transition_subtasks`, which
refuses any pair that is not in `SUBTASK_TRANSITIONS`."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


class TaskOperation(StrEnum):
    EXECUTE = "EXECUTE"
    RETRY = "RETRY"
    ROLLBACK = "ROLLBACK"


class TaskType(StrEnum):
    MANUAL = "MANUAL"
    SYS_ONECE = "SYS_ONECE"  # OCP's own spelling
    SCHEDULED = "SCHEDULED"
    SYS_SCHEDULED = "SYS_SCHEDULED"


class SubtaskStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


class SubtaskOperation(StrEnum):
    EXECUTE = "EXECUTE"
    RETRY = "RETRY"
    ROLLBACK = "ROLLBACK"
    SKIP = "SKIP"
    ROLLBACK_SKIP = "ROLLBACK_SKIP"
    CANCEL = "CANCEL"


S = SubtaskStatus

# (from, to): why it happens.
SUBTASK_TRANSITIONS: dict[tuple[SubtaskStatus, SubtaskStatus], str] = {
    (S.PENDING, S.READY): "all upstreams succeeded",
    (S.PENDING, S.SUCCESSFUL): "a Wait node: its join completes when its last upstream does",
    (S.READY, S.RUNNING): "claimed by a worker",
    (S.PENDING, S.RUNNING): "claimed at once by the worker that finished its last upstream",
    (S.RUNNING, S.SUCCESSFUL): "handler finished",
    (S.RUNNING, S.FAILED): "handler failed, timed out, or its executor was lost",
    (S.RUNNING, S.CANCELING): "cancel requested",
    (S.RUNNING, S.READY): "resumable subtask handed back (shutdown) or its executor lost",
    (S.RUNNING, S.PENDING): "rollback handler finished: the subtask is undone",
    (S.CANCELING, S.FAILED): "the cancelled handler stopped",
    (S.FAILED, S.READY): "retry, or rollback of a failed subtask",
    (S.FAILED, S.SUCCESSFUL): "skip",
    (S.FAILED, S.PENDING): "skip during a rollback",
    (S.SUCCESSFUL, S.READY): "rollback reached this subtask",
    # Operation-only changes (the status stays): marking subtasks for a rollback.
    (S.SUCCESSFUL, S.SUCCESSFUL): "marked for rollback",
    (S.FAILED, S.FAILED): "marked for rollback",
}

ACTIVE_SUBTASK_STATUSES = (S.READY, S.RUNNING, S.CANCELING)
HELD_SUBTASK_STATUSES = (S.RUNNING, S.CANCELING)

TASK_TRANSITIONS: dict[tuple[TaskStatus, TaskStatus], str] = {
    (TaskStatus.RUNNING, TaskStatus.SUCCESSFUL): "every subtask succeeded (or was rolled back)",
    (TaskStatus.RUNNING, TaskStatus.FAILED): "a subtask failed and nothing else runs",
    (TaskStatus.FAILED, TaskStatus.RUNNING): "retry, rollback, subtask retry or skip",
    (TaskStatus.RUNNING, TaskStatus.RUNNING): "operation changed while running",
}


class FailureCode(StrEnum):
    """OCP's codes for why a subtask ended FAILED without its handler deciding so."""

    TIMEOUT = "TSK10012"
    INTERRUPTED = "TSK10013"
    CANCELLED = "TSK10014"
    EXECUTOR_LOST = "TSK10015"
