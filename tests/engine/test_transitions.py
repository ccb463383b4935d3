"""The engine's decisions, without a database: what a run's end, an expired lease, a join,
settling a task and OCP's operations do to subtask and task rows, and what they refuse."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from obpilot.engine import transitions
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.processes import ProcessIdentity
from obpilot.engine.repository import Edge, SubtaskRef, SubtaskState
from obpilot.engine.states import (
    SUBTASK_TRANSITIONS,
    TASK_TRANSITIONS,
    SubtaskOperation,
    SubtaskStatus,
    TaskOperation,
    TaskStatus,
)
from obpilot.engine.transitions import Outcome, OutcomeKind, Transition, Unblock
from obpilot.errors import SubtaskSkipProhibited, TaskRollbackProhibited, TaskStateInvalid
from tests.support.engine_tasks import CATALOG, Broken, Noop, Permanent

S = SubtaskStatus
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RELEASED = {
    "lease_token": None,
    "lease_deadline": None,
    "lease_host": None,
    "lease_boot": None,
    "lease_machine": None,
    "lease_pid": None,
    "lease_pid_started": None,
}


def ref(
    *, operation: SubtaskOperation = SubtaskOperation.EXECUTE, resumable: bool = False
) -> SubtaskRef:
    return SubtaskRef(
        id=7,
        task_id=3,
        version=2,
        name="Sleep",
        class_name=Noop.class_name,
        operation=operation,
        run_time=1,
        timeout=60,
        stage=1,
        parallel_idx=-1,
        parallel_key=None,
        resumable=resumable,
    )


def row(status: S, **fields: Any) -> SubtaskInstance:
    values: dict[str, Any] = {
        "id": 7,
        "task_id": 3,
        "name": "No-op",
        "class_name": Noop.class_name,
        "operation": SubtaskOperation.EXECUTE.value,
        "run_time": 1,
        "version": 2,
        "resumable": False,
        "prohibit_rollback": False,
        "executor": "node-a",
        **fields,
    }
    return SubtaskInstance(status=status.value, **values)


def task(
    status: TaskStatus, operation: TaskOperation = TaskOperation.EXECUTE, **fields: Any
) -> TaskInstance:
    values: dict[str, Any] = {"id": 3, "context": "", **fields}
    return TaskInstance(status=status.value, operation=operation.value, **values)


def ended(outcome: Outcome, *, canceling: bool = False, **ref_fields: Any) -> Transition:
    return transitions.run_ended(
        ref(**ref_fields), outcome, executor="node-a", took=1.5, now=NOW, canceling=canceling
    )


def assert_exists(transition: Transition) -> None:
    sources = transition.source if isinstance(transition.source, tuple) else (transition.source,)
    for source in sources:
        assert (source, transition.target) in SUBTASK_TRANSITIONS


# ---------------------------------------------------------------- a run's end


def test_a_success_finishes_the_subtask_and_releases_its_lease() -> None:
    done = ended(Outcome(OutcomeKind.SUCCESS))
    assert (done.source, done.target, done.new_run) == (S.RUNNING, S.SUCCESSFUL, False)
    assert done.values == {"finish_time": NOW, **RELEASED}
    assert done.log == "finished successfully in 1.500 s"


def test_a_successful_rollback_undoes_the_subtask() -> None:
    done = ended(Outcome(OutcomeKind.SUCCESS), operation=SubtaskOperation.ROLLBACK)
    assert (done.target, done.log) == (S.PENDING, "rollback finished: undone")


def test_a_failure_records_the_handlers_message_and_code() -> None:
    done = ended(Outcome(OutcomeKind.FAILURE, "port 2881 still open", "X1"))
    assert done.target == S.FAILED
    assert done.values == {
        "finish_time": NOW,
        "error_code": "X1",
        "error_message": "port 2881 still open",
        **RELEASED,
    }
    assert done.log == "failed: port 2881 still open"
    assert ended(Outcome(OutcomeKind.FAILURE)).log == "failed: failed"


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [
        (OutcomeKind.TIMEOUT, "TSK10012", "timed out after 60 s (TSK10012)"),
        (OutcomeKind.CANCELLED, "TSK10014", "cancelled (TSK10014); the handler stopped"),
        (OutcomeKind.SHUTDOWN, "TSK10013", "executor node-a shut down"),
    ],
)
def test_stopped_runs_fail_with_ocps_codes(kind: OutcomeKind, code: str, words: str) -> None:
    done = ended(Outcome(kind))
    assert (done.target, done.values["error_code"]) == (S.FAILED, code)
    assert done.log is not None
    assert words in done.log
    assert done.values["error_message"] == done.log


def test_a_resumable_subtask_is_handed_back_on_shutdown() -> None:
    done = ended(Outcome(OutcomeKind.SHUTDOWN), resumable=True)
    assert (done.target, done.new_run) == (S.READY, True)
    assert done.values == {"finish_time": None, **RELEASED}
    assert done.log is not None
    assert done.log.startswith("handed back: executor node-a is shutting down")


def test_a_cancel_that_came_first_decides_over_success_and_hand_back() -> None:
    for outcome, resumable in [(OutcomeKind.SUCCESS, False), (OutcomeKind.SHUTDOWN, True)]:
        done = ended(Outcome(outcome), canceling=True, resumable=resumable)
        assert (done.source, done.target) == (S.CANCELING, S.FAILED)
        assert done.values["error_code"] == "TSK10014"
    failed = ended(Outcome(OutcomeKind.FAILURE, "boom"), canceling=True)
    assert (failed.source, failed.log) == (S.CANCELING, "failed: boom")


def test_a_lost_run_records_nothing() -> None:
    with pytest.raises(ValueError, match="records nothing"):
        ended(Outcome(OutcomeKind.LOST))


def test_every_end_is_in_the_transition_table() -> None:
    for kind in set(OutcomeKind) - {OutcomeKind.LOST}:
        for canceling in (False, True):
            for resumable in (False, True):
                for operation in (SubtaskOperation.EXECUTE, SubtaskOperation.ROLLBACK):
                    assert_exists(
                        ended(
                            Outcome(kind),
                            canceling=canceling,
                            resumable=resumable,
                            operation=operation,
                        )
                    )


# ---------------------------------------------------------------- claims, joins, leases


def test_a_claim_takes_the_subtask_under_a_fresh_lease() -> None:
    deadline = NOW + timedelta(seconds=30)
    process = ProcessIdentity("boot-1/4026531836", 4242, 1000)
    holder = transitions.Holder("node-a", "machine-1", "b1", process)
    taken = transitions.claim(S.READY, holder=holder, token="t", now=NOW, deadline=deadline)
    assert (taken.source, taken.target) == (S.READY, S.RUNNING)
    assert taken.values == {
        "upstreams_left": 0,
        "executor": "node-a",
        "lease_token": "t",
        "lease_deadline": deadline,
        "lease_host": "machine-1",
        "lease_boot": "b1",
        "lease_machine": "boot-1/4026531836",
        "lease_pid": 4242,
        "lease_pid_started": 1000,
        "start_time": NOW,
        "finish_time": None,
        "error_code": None,
        "error_message": None,
    }
    assert_exists(taken)
    assert_exists(transitions.claim(S.PENDING, holder=holder, token="t", now=NOW, deadline=NOW))


def test_run_headers_name_the_operation_run_and_executor() -> None:
    header = transitions.run_header(SubtaskOperation.RETRY, 2, "Stop", NOW, "node-a")
    assert header == "{RETRY}{2024-05-01T12:00:00.000+00:00} runTime=2 executor=node-a Stop"
    joined = transitions.run_header(SubtaskOperation.EXECUTE, 1, "Wait node", NOW, None)
    assert joined == "{EXECUTE}{2024-05-01T12:00:00.000+00:00} runTime=1 Wait node"


def test_a_join_completes_on_the_spot() -> None:
    joined = transitions.join(executor="node-a", now=NOW)
    assert (joined.source, joined.target) == (S.PENDING, S.SUCCESSFUL)
    assert joined.values["start_time"] == joined.values["finish_time"] == NOW
    assert joined.log == "every upstream succeeded: joined"
    assert_exists(joined)


def test_an_expired_lease_of_a_plain_subtask_fails_it_as_executor_lost() -> None:
    stale = row(S.RUNNING, lease_deadline=NOW - timedelta(seconds=1))
    reaped = transitions.lease_expired(stale, NOW)
    assert reaped is not None
    assert (reaped.source, reaped.target, reaped.new_run) == (S.RUNNING, S.FAILED, False)
    assert reaped.values["error_code"] == "TSK10015"
    assert reaped.log is not None
    assert reaped.log.startswith("executor node-a lost: its lease expired at 2024-05-01T11:59:59")
    assert reaped.log.endswith("retry it to run it again")
    assert reaped.values["lease_token"] is None


def test_an_expired_lease_of_a_resumable_subtask_makes_it_ready_again() -> None:
    reaped = transitions.lease_expired(row(S.RUNNING, resumable=True), NOW)
    assert reaped is not None
    assert (reaped.target, reaped.new_run) == (S.READY, True)
    assert reaped.log is not None
    assert "(never set)" in reaped.log
    assert "can resume" in reaped.log


def test_an_expired_lease_during_a_cancel_ends_it_cancelled() -> None:
    reaped = transitions.lease_expired(row(S.CANCELING, resumable=True), NOW)
    assert reaped is not None
    assert (reaped.source, reaped.target) == (S.CANCELING, S.FAILED)
    assert reaped.values["error_code"] == "TSK10014"


def test_live_leases_and_rows_not_held_are_not_reaped() -> None:
    assert transitions.lease_expired(row(S.RUNNING, lease_deadline=NOW), NOW) is None
    assert transitions.lease_expired(row(S.FAILED), NOW) is None


RESTARTED = transitions.Holder("node-a", "machine-1", "new")


def held(status: S = S.RUNNING, **fields: Any) -> SubtaskInstance:
    """Held by node-a on machine-1 in its boot "old", under a lease live for an hour."""
    lease = {"lease_host": "machine-1", "lease_boot": "old"}
    return row(status, lease_deadline=NOW + timedelta(hours=1), **{**lease, **fields})


def test_a_previous_boot_of_this_instance_loses_its_subtasks_at_once() -> None:
    """Its lease still runs; the rules are those of an expired lease."""
    for resumable, target, code in ((True, S.READY, None), (False, S.FAILED, "TSK10015")):
        taken = transitions.previous_boot(held(resumable=resumable), NOW, holder=RESTARTED)
        assert taken is not None
        assert (taken.source, taken.target, taken.new_run) == (S.RUNNING, target, resumable)
        assert taken.values.get("error_code") == code
        assert taken.log is not None
        assert taken.log.startswith("executor node-a lost: it restarted")
        assert {key: taken.values[key] for key in RELEASED} == RELEASED
        expired = transitions.lease_expired(row(S.RUNNING, resumable=resumable), NOW)
        assert expired is not None
        assert (expired.target, expired.new_run) == (taken.target, taken.new_run)
        assert_exists(taken)
    cancelled = transitions.previous_boot(held(S.CANCELING), NOW, holder=RESTARTED)
    assert cancelled is not None
    assert (cancelled.target, cancelled.values["error_code"]) == (S.FAILED, "TSK10014")


def test_only_a_previous_boot_of_this_instance_is_taken_back_early() -> None:
    for not_ours in (
        held(executor="node-b"),  # another instance
        held(lease_host="machine-2"),  # one of the same name on another machine
        held(lease_host=None, lease_boot=None),  # claimed before boots were recorded
        held(lease_boot="new"),  # this boot's own
        held(S.SUCCESSFUL),  # not held
    ):
        assert transitions.previous_boot(not_ours, NOW, holder=RESTARTED) is None


ENDED = ProcessIdentity("boot-1/4026531836", 4242, 1000)
# Another instance (another name) on the same machine, started after node-a's process ended.
NEIGHBOUR = transitions.Holder(
    "node-z", "machine-1", "new", ProcessIdentity("boot-1/4026531836", 5151, 2000)
)


def held_by_process(status: S = S.RUNNING, **fields: Any) -> SubtaskInstance:
    process = {"lease_machine": ENDED.machine, "lease_pid": ENDED.pid, "lease_pid_started": 1000}
    return held(status, **{**process, **fields})


def test_a_subtask_whose_process_ended_is_taken_back_by_any_instance_of_its_machine() -> None:
    """Whatever the name of the instance that finds it; its lease still runs for an hour."""
    assert transitions.lease_process(held_by_process()) == ENDED
    for resumable, target in ((True, S.READY), (False, S.FAILED)):
        found = held_by_process(resumable=resumable)
        taken = transitions.holder_ended(found, NOW, holder=NEIGHBOUR, ended=frozenset({ENDED}))
        assert taken is not None
        assert (taken.source, taken.target, taken.new_run) == (S.RUNNING, target, resumable)
        assert taken.log is not None
        assert taken.log.startswith("executor node-a lost: its process (pid 4242) on this")
        assert {key: taken.values[key] for key in RELEASED} == RELEASED
        assert_exists(taken)


def test_only_an_ended_process_of_this_machine_loses_its_subtasks_early() -> None:
    everything = frozenset({ENDED})
    for not_taken, holder, ended in (
        (held_by_process(), NEIGHBOUR, frozenset[ProcessIdentity]()),  # it still runs
        (
            held_by_process(lease_pid_started=999),
            NEIGHBOUR,
            everything,
        ),  # not the process seen ended
        (held_by_process(lease_machine="boot-2/4026531836"), NEIGHBOUR, everything),
        (held_by_process(lease_machine="boot-1/4026532000"), NEIGHBOUR, everything),
        (held(), NEIGHBOUR, everything),  # claimed before processes were recorded
        (held_by_process(lease_boot="new"), NEIGHBOUR, everything),  # this boot's own
        (held_by_process(S.SUCCESSFUL), NEIGHBOUR, everything),  # not held
        (held_by_process(), replace(NEIGHBOUR, process=None), everything),  # no /proc here
    ):
        assert transitions.holder_ended(not_taken, NOW, holder=holder, ended=ended) is None


def test_every_reap_is_in_the_transition_table() -> None:
    for status in (S.RUNNING, S.CANCELING):
        for resumable in (False, True):
            reaped = transitions.lease_expired(row(status, resumable=resumable), NOW)
            assert reaped is not None
            assert_exists(reaped)
    assert_exists(transitions.UPSTREAMS_DONE)
    assert_exists(transitions.ROLLBACK_REACHED)


# ---------------------------------------------------------------- readiness and settling


def states(**statuses: S) -> list[SubtaskState]:
    return [
        SubtaskState(int(name[1:]), status.value, "EXECUTE", 0) for name, status in statuses.items()
    ]


def test_pending_subtasks_whose_upstreams_all_succeeded_are_promotable() -> None:
    # 1 -> 2 -> 4 and 1 -> 3 -> 4: a diamond with 3 still pending
    edges = [Edge(1, 2), Edge(1, 3), Edge(2, 4), Edge(3, 4)]
    found = transitions.promotable(
        states(s1=S.SUCCESSFUL, s2=S.SUCCESSFUL, s3=S.PENDING, s4=S.PENDING), edges
    )
    assert found == [3]
    assert transitions.promotable(states(s1=S.PENDING), []) == [1]
    assert transitions.promotable(states(s1=S.FAILED, s2=S.PENDING), [Edge(1, 2)]) == []


@pytest.mark.parametrize(
    ("operation", "present", "status", "unblock"),
    [
        (TaskOperation.EXECUTE, {"SUCCESSFUL"}, TaskStatus.SUCCESSFUL, None),
        (TaskOperation.RETRY, {"SUCCESSFUL", "FAILED"}, TaskStatus.FAILED, None),
        (
            TaskOperation.EXECUTE,
            {"SUCCESSFUL", "PENDING"},
            TaskStatus.FAILED,
            Unblock.REPAIR_PROMOTIONS,
        ),
        (TaskOperation.ROLLBACK, {"PENDING"}, TaskStatus.SUCCESSFUL, None),
        (TaskOperation.ROLLBACK, {"PENDING", "FAILED"}, TaskStatus.FAILED, None),
        (
            TaskOperation.ROLLBACK,
            {"PENDING", "SUCCESSFUL"},
            TaskStatus.FAILED,
            Unblock.NEXT_ROLLBACK,
        ),
    ],
)
def test_settling_a_task(
    operation: TaskOperation, present: set[str], status: TaskStatus, unblock: Unblock | None
) -> None:
    settlement = transitions.settle(operation, present)
    assert (settlement.status, settlement.unblock) == (status, unblock)
    assert (TaskStatus.RUNNING, settlement.status) in TASK_TRANSITIONS
    assert bool(settlement.stuck) == (unblock is not None)


# ---------------------------------------------------------------- OCP's operations


def test_a_task_retry_runs_its_failed_subtasks_again() -> None:
    plan = transitions.retry_task(
        task(TaskStatus.FAILED), [row(S.FAILED), row(S.SUCCESSFUL)], "ann", CATALOG
    )
    assert (plan.subtask.source, plan.subtask.target, plan.subtask.new_run) == (
        S.FAILED,
        S.READY,
        True,
    )
    assert plan.subtask.values["operation"] == "RETRY"
    assert plan.subtask.values["error_message"] is None
    assert plan.subtask.log == "retry of task 3 requested by ann"
    assert plan.task == transitions.TaskTransition(
        TaskStatus.RUNNING, {"operation": "RETRY", "finish_time": None}
    )


def test_a_task_retry_is_refused_when_ocp_refuses_it() -> None:
    with pytest.raises(TaskStateInvalid, match="task 3 in state RUNNING"):
        transitions.retry_task(task(TaskStatus.RUNNING), [], "ann", CATALOG)
    with pytest.raises(TaskStateInvalid, match="a rollback failed"):
        transitions.retry_task(task(TaskStatus.FAILED, TaskOperation.ROLLBACK), [], "ann", CATALOG)
    broken = row(S.FAILED, class_name=Broken.class_name)
    with pytest.raises(TaskStateInvalid, match="does not allow retry"):
        transitions.retry_task(task(TaskStatus.FAILED), [broken], "ann", CATALOG)


def test_a_rollback_starts_from_the_failure() -> None:
    plan = transitions.rollback_task(task(TaskStatus.FAILED), [row(S.FAILED)], "ann")
    assert plan.subtask.source == (S.SUCCESSFUL, S.FAILED)
    assert (plan.subtask.target, plan.subtask.new_run) == (S.READY, True)
    assert plan.subtask.log == "rollback of task 3 requested by ann"
    assert plan.task is not None
    assert plan.task.values["operation"] == "ROLLBACK"
    marked = transitions.mark_for_rollback(S.SUCCESSFUL)
    assert (marked.source, marked.target, marked.values) == (
        S.SUCCESSFUL,
        S.SUCCESSFUL,
        {"operation": "ROLLBACK"},
    )


def test_a_rollback_is_refused_when_prohibited() -> None:
    with pytest.raises(TaskStateInvalid, match="ROLLBACK is not allowed"):
        transitions.rollback_task(task(TaskStatus.SUCCESSFUL), [], "ann")
    prohibited = task(TaskStatus.FAILED, context='{"stringMap":{"prohibit_rollback":"true"}}')
    with pytest.raises(TaskRollbackProhibited, match="prohibit_rollback"):
        transitions.rollback_task(prohibited, [], "ann")
    ran = row(S.SUCCESSFUL, name=Permanent.name, prohibit_rollback=True)
    not_run = row(S.PENDING, name="Never ran", prohibit_rollback=True)
    with pytest.raises(TaskRollbackProhibited, match=r"subtask\(s\) Permanent change do not"):
        transitions.rollback_task(task(TaskStatus.FAILED), [ran, not_run], "ann")
    transitions.rollback_task(task(TaskStatus.FAILED), [not_run], "ann")


def test_a_subtask_retry_reopens_a_failed_task_only() -> None:
    plan = transitions.retry_subtask(task(TaskStatus.FAILED), row(S.FAILED), "ann", CATALOG)
    assert plan.subtask.log == "retry of subtask 7 requested by ann"
    assert plan.task is not None
    assert plan.task.target == TaskStatus.RUNNING
    assert (
        transitions.retry_subtask(task(TaskStatus.RUNNING), row(S.FAILED), "ann", CATALOG).task
        is None
    )
    with pytest.raises(TaskStateInvalid, match="RETRY is not allowed for subtask 7 in state READY"):
        transitions.retry_subtask(task(TaskStatus.FAILED), row(S.READY), "ann", CATALOG)
    rolled = row(S.FAILED, operation="ROLLBACK")
    with pytest.raises(TaskStateInvalid, match="its rollback failed"):
        transitions.retry_subtask(task(TaskStatus.FAILED), rolled, "ann", CATALOG)


def test_a_skip_counts_as_done_forward_and_as_undone_in_a_rollback() -> None:
    forward = transitions.skip_subtask(task(TaskStatus.FAILED), row(S.FAILED), "ann", NOW, CATALOG)
    assert (forward.subtask.target, forward.subtask.log) == (S.SUCCESSFUL, "skipped by ann")
    assert forward.subtask.values == {"operation": "SKIP", "finish_time": NOW}
    assert forward.task is not None
    assert forward.task.values["operation"] == "EXECUTE"
    back = transitions.skip_subtask(
        task(TaskStatus.FAILED, TaskOperation.ROLLBACK), row(S.FAILED), "ann", NOW, CATALOG
    )
    assert (back.subtask.target, back.subtask.log) == (S.PENDING, "rollback skipped by ann")
    assert back.subtask.values["operation"] == "ROLLBACK_SKIP"
    broken = row(S.FAILED, class_name=Broken.class_name)
    with pytest.raises(SubtaskSkipProhibited, match="cannot be skipped"):
        transitions.skip_subtask(task(TaskStatus.FAILED), broken, "ann", NOW, CATALOG)


def test_a_cancel_keeps_a_rollbacks_operation() -> None:
    cancel = transitions.cancel_subtask(row(S.RUNNING), "ann")
    assert (cancel.source, cancel.target) == (S.RUNNING, S.CANCELING)
    assert cancel.values == {"operation": "CANCEL"}
    assert cancel.log == "cancel requested by ann"
    assert transitions.cancel_subtask(row(S.RUNNING, operation="ROLLBACK"), "ann").values == {}
    with pytest.raises(
        TaskStateInvalid, match="CANCEL is not allowed for subtask 7 in state FAILED"
    ):
        transitions.cancel_subtask(row(S.FAILED), "ann")


def test_every_operation_is_in_the_transition_tables() -> None:
    failed_task, failed = task(TaskStatus.FAILED), row(S.FAILED)
    plans = [
        transitions.retry_task(failed_task, [failed], "ann", CATALOG),
        transitions.rollback_task(failed_task, [failed], "ann"),
        transitions.retry_subtask(failed_task, failed, "ann", CATALOG),
        transitions.skip_subtask(failed_task, failed, "ann", NOW, CATALOG),
        transitions.skip_subtask(
            task(TaskStatus.FAILED, TaskOperation.ROLLBACK), failed, "a", NOW, CATALOG
        ),
    ]
    for plan in plans:
        assert_exists(plan.subtask)
        assert plan.task is not None
        assert (TaskStatus.FAILED, plan.task.target) in TASK_TRANSITIONS
    assert_exists(transitions.cancel_subtask(row(S.RUNNING), "ann"))
    for status in (S.SUCCESSFUL, S.FAILED):
        assert_exists(transitions.mark_for_rollback(status))
