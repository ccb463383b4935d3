"""Task center HTTP routes (OCP's task-management endpoints, plus an SSE stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.api.deps import SessionDep
from obpilot.api.envelope import Envelope, NoDataEnvelope, Page, ok, ok_no_data
from obpilot.api.pagination import PageRequest, make_page, page_params
from obpilot.api.params import MAX_ID
from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine.states import TaskStatus, TaskType
from obpilot.errors import TaskNotFound
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.tasks import service
from obpilot.tasks.schemas import SubtaskLogOut, SubtaskOut, TaskListItem, TaskOut
from obpilot.tasks.stream import follow_task

router = APIRouter(tags=["tasks"])

TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="Task instance id.")]
SubtaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="Subtask instance id.")]
TaskPage = Annotated[PageRequest, Depends(page_params(service.TASK_SORT))]
Reader = [Depends(require("TASK", "READ"))]
Manager = Annotated[Principal, Depends(require("TASK", "UPDATE"))]


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One write transaction per request (BEGIN IMMEDIATE on SQLite: the operation reads,
    then writes, and must not lose the write lock race to a worker)."""
    database: Database = request.app.state.database
    async with database.transaction(write=True) as session:
        yield session


WriteSessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]


@router.get("/api/v2/tasks/instances", summary="List tasks", dependencies=Reader)
async def list_tasks(
    session: SessionDep,
    page: TaskPage,
    name: Annotated[str | None, Query(max_length=256, description="Part of the name.")] = None,
    status: Annotated[list[TaskStatus] | None, Query()] = None,
    type: Annotated[list[TaskType] | None, Query()] = None,
    clusterId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    clusterName: Annotated[
        str | None, Query(max_length=128, description="Part of the cluster name.")
    ] = None,
    cluterName: Annotated[
        str | None,
        Query(max_length=128, description="OCP's documented misspelling of clusterName."),
    ] = None,
    tenantId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    hostId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Envelope[Page[TaskListItem]]:
    where = repo.TaskFilter(
        name=name,
        statuses=[s.value for s in status or []],
        types=[t.value for t in type or []],
        cluster_id=clusterId,
        cluster_name=clusterName or cluterName,
        tenant_id=tenantId,
        host_id=hostId,
    )
    items, total = await service.list_tasks(session, page=page, where=where)
    return ok(make_page(items, total, page))


@router.get("/api/v2/tasks/instances/{taskInstanceId}", summary="Get a task", dependencies=Reader)
async def get_task(session: SessionDep, taskInstanceId: TaskId) -> Envelope[TaskOut]:
    return ok(await service.get_task(session, task_id=taskInstanceId))


@router.post("/api/v2/tasks/instances/{taskInstanceId}/retry", summary="Retry a failed task")
async def retry_task(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId
) -> Envelope[TaskOut]:
    return ok(await service.retry_task(session, task_id=taskInstanceId, actor=user.username))


@router.post("/api/v2/tasks/instances/{taskInstanceId}/rollback", summary="Roll back a failed task")
async def rollback_task(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId
) -> Envelope[TaskOut]:
    return ok(await service.rollback_task(session, task_id=taskInstanceId, actor=user.username))


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}",
    summary="Get a subtask",
    dependencies=Reader,
)
async def get_subtask(
    session: SessionDep, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> Envelope[SubtaskOut]:
    return ok(
        await service.get_subtask(session, task_id=taskInstanceId, subtask_id=subtaskInstanceId)
    )


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/log",
    summary="A subtask's log (every run; grows while it runs)",
    dependencies=Reader,
)
async def get_subtask_log(
    session: SessionDep, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> Envelope[SubtaskLogOut]:
    return ok(
        await service.get_subtask_log(session, task_id=taskInstanceId, subtask_id=subtaskInstanceId)
    )


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/retry",
    summary="Retry a failed subtask",
)
async def retry_subtask(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> Envelope[SubtaskOut]:
    return ok(
        await service.retry_subtask(
            session, task_id=taskInstanceId, subtask_id=subtaskInstanceId, actor=user.username
        )
    )


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/skip",
    summary="Skip a failed subtask",
)
async def skip_subtask(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> NoDataEnvelope:
    await service.skip_subtask(
        session, task_id=taskInstanceId, subtask_id=subtaskInstanceId, actor=user.username
    )
    return ok_no_data()


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/cancel",
    summary="Cancel a running subtask",
)
async def cancel_subtask(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> NoDataEnvelope:
    await service.cancel_subtask(
        session, task_id=taskInstanceId, subtask_id=subtaskInstanceId, actor=user.username
    )
    return ok_no_data()


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}/stream",
    summary="Follow a task (Server-Sent Events: subtask status changes and log lines)",
    dependencies=Reader,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_task(
    request: Request,
    taskInstanceId: TaskId,
    follow: Annotated[
        bool, Query(description="Keep streaming after the task ended (retries, rollbacks).")
    ] = False,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, description="Resume after this log line id."),
    ] = None,
) -> StreamingResponse:
    database: Database = request.app.state.database
    async with database.transaction() as session:
        if await repo.get_task(session, taskInstanceId) is None:
            raise TaskNotFound(taskInstanceId)
    poll = min(1.0, request.app.state.settings.engine_poll_seconds)
    return StreamingResponse(
        follow_task(
            database,
            taskInstanceId,
            follow=follow,
            poll_seconds=poll,
            after_log_id=last_event_id or 0,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
