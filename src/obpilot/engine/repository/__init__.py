"""All task-engine SQL, by concern. Nothing here commits: callers own their transactions.

* `transitions`: the one statement that changes a subtask's status (`transition_subtasks`)
  and the task row's (`transition_task`), conditional on the expected status and a fence;
* `rows`: inserting a task's DAG and reading rows back;
* `graph`: the DAG read once, children counted off as upstreams succeed, the next
  subtasks of a rollback;
* `claims`: READY work, leases, the metadb's clock;
* `outputs`, `logs`: what subtasks publish and log;
* `listing`: the task center's pages.

Callers use the package (`from obpilot.engine import repository as repo`)."""

from obpilot.engine.repository.claims import (
    ClaimMode,
    HeldLease,
    any_ready,
    database_utc_now,
    expired_leases,
    held_rows,
    machine_leases,
    previous_boot_leases,
    ready_candidates,
    renew_leases,
    server_version,
)
from obpilot.engine.repository.graph import (
    Child,
    Dag,
    children_of,
    count_down_unless_last,
    count_down_upstreams,
    dag,
    parent_ids,
    rollback_ready_candidates,
)
from obpilot.engine.repository.listing import (
    TASK_SORT,
    SubtaskLine,
    TaskFilter,
    TaskPage,
    page_tasks,
    subtasks_of_tasks,
)
from obpilot.engine.repository.logs import (
    LogLine,
    insert_log_lines,
    log_rows_after,
    max_log_id,
    subtask_log,
)
from obpilot.engine.repository.outputs import Output, put_output, task_outputs, visible_outputs
from obpilot.engine.repository.rows import (
    DagView,
    Edge,
    Neighbours,
    SubtaskRef,
    SubtaskState,
    SubtaskView,
    get_subtask,
    get_task,
    insert_subtasks,
    insert_task,
    list_edges,
    list_subtasks,
    statuses,
    subtask_neighbours,
    subtask_states,
    subtask_views,
    subtasks_by_ids,
    tasks_by_ids,
)
from obpilot.engine.repository.transitions import (
    IllegalTransition,
    transition_subtask,
    transition_subtasks,
    transition_task,
)

__all__ = [
    "TASK_SORT",
    "Child",
    "ClaimMode",
    "Dag",
    "DagView",
    "Edge",
    "HeldLease",
    "IllegalTransition",
    "LogLine",
    "Neighbours",
    "Output",
    "SubtaskLine",
    "SubtaskRef",
    "SubtaskState",
    "SubtaskView",
    "TaskFilter",
    "TaskPage",
    "any_ready",
    "children_of",
    "count_down_unless_last",
    "count_down_upstreams",
    "dag",
    "database_utc_now",
    "expired_leases",
    "get_subtask",
    "get_task",
    "held_rows",
    "insert_log_lines",
    "insert_subtasks",
    "insert_task",
    "list_edges",
    "list_subtasks",
    "log_rows_after",
    "machine_leases",
    "max_log_id",
    "page_tasks",
    "parent_ids",
    "previous_boot_leases",
    "put_output",
    "ready_candidates",
    "renew_leases",
    "rollback_ready_candidates",
    "server_version",
    "statuses",
    "subtask_log",
    "subtask_neighbours",
    "subtask_states",
    "subtask_views",
    "subtasks_by_ids",
    "subtasks_of_tasks",
    "task_outputs",
    "tasks_by_ids",
    "transition_subtask",
    "transition_subtasks",
    "transition_task",
    "visible_outputs",
]
