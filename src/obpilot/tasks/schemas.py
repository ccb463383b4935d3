"""Task shapes on the wire, named as OCP names them (reference: ocp-api.md 1.1, 1.2, 1.4).

* `SubmittedTaskOut`: what an operation endpoint answers (the seed's shape A: `cluster`,
  `context` as OCP's Java-style string, `creator`, `id`, `name`, `startTime`, `status`,
  `tasks[]`).
* `TaskOut`: the full task of `GET /api/v2/tasks/instances/{id}` with `subtasks[]`.
* `TaskListItem`: one entry of the task list."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from obpilot.api.envelope import CamelModel


class ClusterRef(CamelModel):
    id: int | None
    name: str | None
    ob_cluster_id: int | None


class CreatorRef(CamelModel):
    id: int | None
    name: str | None


class BriefSubtaskOut(CamelModel):
    """An entry of shape A's `tasks[]`."""

    description: str
    downstreams: list[int]
    id: int
    name: str
    operation: str
    status: str
    upstreams: list[int]


class SubmittedTaskOut(CamelModel):
    cluster: ClusterRef | None
    context: str = Field(description="Java-style: Context(parallelIdx=-1, stringMap={..}, ..)")
    creator: CreatorRef
    id: int
    name: str
    start_time: str | None
    status: str
    tasks: list[BriefSubtaskOut]


class SubtaskOut(CamelModel):
    id: int
    task_id: int
    name: str
    series_id: int
    description: str
    class_name: str
    timeout: int = Field(description="Seconds.")
    status: str
    operation: str
    executor: str | None
    run_time: int
    context: dict[str, Any] = Field(
        description="This subtask's parallelIdx and what it published (JSON shape)."
    )
    create_time: str
    start_time: str | None
    finish_time: str | None
    node_type: str
    parallel_idx: int
    upstreams: list[int]
    downstreams: list[int]
    prohibit_rollback: bool
    error_code: str | None = Field(description="Why it failed, when the engine decided it.")
    error_message: str | None


class TaskOut(CamelModel):
    id: int
    name: str
    task_definition_id: int = -1
    type: str
    status: str
    operation: str
    cluster_id: int | None
    tenant_id: int | None
    host_id: int | None
    cluster: ClusterRef | None
    tenant: dict[str, Any] | None = None
    creator: CreatorRef
    executor: str | None
    context: dict[str, Any] = Field(description="JSON shape: stringMap, listMap, parallelIdx.")
    create_time: str
    start_time: str | None
    finish_time: str | None
    prohibit_rollback: bool
    subtasks: list[SubtaskOut]


class BasicSubtaskOut(CamelModel):
    id: int
    name: str
    description: str
    status: str
    operation: str


class TaskListItem(CamelModel):
    id: int
    name: str
    type: str
    status: str
    operation: str
    cluster_id: int | None
    cluster: ClusterRef | None
    tenant: dict[str, Any] | None = None
    creator: CreatorRef
    executor: str | None
    create_time: str
    start_time: str | None
    finish_time: str | None
    subtasks: list[BasicSubtaskOut]


class SubtaskLogOut(CamelModel):
    log: str = Field(
        description="Every run's lines; each run starts with a {OPERATION}{time} header."
    )
