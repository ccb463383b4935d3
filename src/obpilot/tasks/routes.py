"""Task center HTTP routes (OCP's task-management endpoints, plus an SSE stream)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from obpilot.api.deps import SessionDep, WriteSessionDep
from obpilot.api.envelope import Envelope, NoDataEnvelope, Page, ok, ok_no_data, ok_wire
from obpilot.api.pagination import make_page, page_params
from obpilot.api.params import MAX_ID, SubtaskId, TaskId
from obpilot.engine.catalog import Catalog
from obpilot.engine.states import TaskStatus, TaskType
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.paging import PageRequest
from obpilot.tasks import service
from obpilot.tasks.schemas import SubtaskLogOut, SubtaskOut, TaskListItem, TaskOut
from obpilot.tasks.service import TaskAccess
from obpilot.tasks.stream import StreamHub

router = APIRouter(tags=["tasks"])

TaskPage = Annotated[PageRequest, Depends(page_params(service.TASK_SORT))]
# The service checks the rest: READ (UPDATE) on the cluster each task belongs to.
Reader = Annotated[Principal, Depends(require("TASK", "READ", and_task_cluster=True))]
Manager = Annotated[Principal, Depends(require("TASK", "UPDATE", and_task_cluster=True))]


def _access(principal: Principal) -> TaskAccess:
    return TaskAccess(principal.permissions)


def _catalog(request: Request) -> Catalog:
    """The engine's: operations check its subtask classes' flags and run end hooks."""
    catalog: Catalog = request.app.state.engine.catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(_catalog)]


@router.get("/api/v2/tasks/instances", summary="List tasks (those of clusters the caller reads)")
async def list_tasks(
    session: SessionDep,
    page: TaskPage,
    user: Reader,
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
    items, total = await service.list_tasks(
        session,
        page=page,
        access=_access(user),
        name=name,
        statuses=status or [],
        types=type or [],
        cluster_id=clusterId,
        cluster_name=clusterName or cluterName,
        tenant_id=tenantId,
        host_id=hostId,
    )
    return ok(make_page(items, total, page))


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}",
    summary="Get a task",
    response_model=Envelope[TaskOut],
)
async def get_task(session: SessionDep, user: Reader, taskInstanceId: TaskId) -> Response:
    return ok_wire(await service.get_task(session, task_id=taskInstanceId, access=_access(user)))


# The path OCP's field clients poll (Terraform providers): the same answer.
router.get(
    "/api/v2/tasks/{taskInstanceId}",
    summary="Get a task (as GET /api/v2/tasks/instances/{id})",
    response_model=Envelope[TaskOut],
)(get_task)


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/retry",
    summary="Retry a failed task",
    response_model=Envelope[TaskOut],
)
async def retry_task(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId, catalog: CatalogDep
) -> Response:
    return ok_wire(
        await service.retry_task(
            session,
            task_id=taskInstanceId,
            actor=user.username,
            access=_access(user),
            catalog=catalog,
        )
    )


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/rollback",
    summary="Roll back a failed task",
    response_model=Envelope[TaskOut],
)
async def rollback_task(
    session: WriteSessionDep, user: Manager, taskInstanceId: TaskId, catalog: CatalogDep
) -> Response:
    return ok_wire(
        await service.rollback_task(
            session,
            task_id=taskInstanceId,
            actor=user.username,
            access=_access(user),
            catalog=catalog,
        )
    )


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}",
    summary="Get a subtask",
    response_model=Envelope[SubtaskOut],
)
async def get_subtask(
    session: SessionDep, user: Reader, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> Response:
    return ok_wire(
        await service.get_subtask(
            session, task_id=taskInstanceId, subtask_id=subtaskInstanceId, access=_access(user)
        )
    )


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/log",
    summary="A subtask's log (every run; grows while it runs)",
)
async def get_subtask_log(
    session: SessionDep, user: Reader, taskInstanceId: TaskId, subtaskInstanceId: SubtaskId
) -> Envelope[SubtaskLogOut]:
    return ok(
        await service.get_subtask_log(
            session, task_id=taskInstanceId, subtask_id=subtaskInstanceId, access=_access(user)
        )
    )


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/retry",
    summary="Retry a failed subtask",
    response_model=Envelope[SubtaskOut],
)
async def retry_subtask(
    session: WriteSessionDep,
    user: Manager,
    taskInstanceId: TaskId,
    subtaskInstanceId: SubtaskId,
    catalog: CatalogDep,
) -> Response:
    return ok_wire(
        await service.retry_subtask(
            session,
            task_id=taskInstanceId,
            subtask_id=subtaskInstanceId,
            actor=user.username,
            access=_access(user),
            catalog=catalog,
        )
    )


@router.post(
    "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/skip",
    summary="Skip a failed subtask",
)
async def skip_subtask(
    session: WriteSessionDep,
    user: Manager,
    taskInstanceId: TaskId,
    subtaskInstanceId: SubtaskId,
    catalog: CatalogDep,
) -> NoDataEnvelope:
    await service.skip_subtask(
        session,
        task_id=taskInstanceId,
        subtask_id=subtaskInstanceId,
        actor=user.username,
        access=_access(user),
        catalog=catalog,
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
        session,
        task_id=taskInstanceId,
        subtask_id=subtaskInstanceId,
        actor=user.username,
        access=_access(user),
    )
    return ok_no_data()


@router.get(
    "/api/v2/tasks/instances/{taskInstanceId}/stream",
    summary="Follow a task (Server-Sent Events: subtask status changes and log lines)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_task(
    request: Request,
    session: SessionDep,
    user: Reader,
    taskInstanceId: TaskId,
    follow: Annotated[
        bool, Query(description="Keep streaming after the task ended (retries, rollbacks).")
    ] = False,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID", ge=0, le=MAX_ID, description="Resume after this log line id."
        ),
    ] = None,
) -> StreamingResponse:
    await service.check_readable(session, task_id=taskInstanceId, access=_access(user))
    hub: StreamHub = request.app.state.stream_hub
    hub.check_room(user.id)
    return StreamingResponse(
        hub.follow(taskInstanceId, user_id=user.id, follow=follow, after_log_id=last_event_id or 0),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
