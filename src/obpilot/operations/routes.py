"""Operation endpoints: stop, start and restart of a cluster, a zone or a server. Each
answers at once with the task it created (cluster operations in the shape of OCP's
stop-cluster sample; zone and server operations as the full task, as OCP's samples do).
Endpoint function names are the audit log's actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.api.deps import WriteSessionDep
from obpilot.api.envelope import Envelope, ok, ok_wire
from obpilot.api.params import ClusterId, ServerId, ZoneName
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.inventory.state import Operation
from obpilot.operations import service
from obpilot.operations.schemas import RestartOptions, StartOptions, StopOptions
from obpilot.operations.service import Caller
from obpilot.tasks.schemas import SubmittedTaskOut, TaskOut
from obpilot.tasks.service import brief_of, full_task

router = APIRouter(tags=["cluster operations"])


async def _updater(
    request: Request,
    user: Annotated[Principal, Depends(require("CLUSTER", "UPDATE", cluster_id_param="id"))],
) -> Caller:
    return Caller.of(user, instance=request.app.state.settings.executor_name)


Updater = Annotated[Caller, Depends(_updater)]


# ------------------------------------------------------------------ cluster


@router.post("/api/v2/ob/clusters/{id}/stop", summary="Stop an OceanBase cluster")
async def stop_cluster(
    session: WriteSessionDep, id: ClusterId, user: Updater, body: StopOptions | None = None
) -> Envelope[SubmittedTaskOut]:
    submitted = await service.stop_cluster(session, cluster_id=id, options=body, caller=user)
    return ok(brief_of(submitted.task, submitted.dag))


@router.post("/api/v2/ob/clusters/{id}/start", summary="Start an OceanBase cluster")
async def start_cluster(
    session: WriteSessionDep, id: ClusterId, user: Updater, body: StartOptions | None = None
) -> Envelope[SubmittedTaskOut]:
    submitted = await service.start_cluster(session, cluster_id=id, caller=user)
    return ok(brief_of(submitted.task, submitted.dag))


@router.post(
    "/api/v2/ob/clusters/{id}/restart",
    summary="Restart an OceanBase cluster (zone by zone with three or more zones)",
)
async def restart_cluster(
    session: WriteSessionDep, id: ClusterId, user: Updater, body: RestartOptions | None = None
) -> Envelope[SubmittedTaskOut]:
    submitted = await service.restart_cluster(session, cluster_id=id, options=body, caller=user)
    return ok(brief_of(submitted.task, submitted.dag))


# ------------------------------------------------------------------ zone


async def _zone_operation(
    session: AsyncSession,
    operation: Operation,
    cluster_id: int,
    zone_name: str,
    user: Caller,
    options: StopOptions | None = None,
) -> Response:
    submitted = await service.zone_operation(
        session,
        operation=operation,
        cluster_id=cluster_id,
        zone_name=zone_name,
        options=options,
        caller=user,
    )
    return ok_wire(await full_task(session, submitted.task))


@router.post(
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/stop",
    summary="Stop a zone",
    response_model=Envelope[TaskOut],
)
async def stop_zone(
    session: WriteSessionDep,
    id: ClusterId,
    zoneName: ZoneName,
    user: Updater,
    body: StopOptions | None = None,
) -> Response:
    return await _zone_operation(session, Operation.STOP, id, zoneName, user, body)


@router.post(
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/start",
    summary="Start a zone",
    response_model=Envelope[TaskOut],
)
async def start_zone(
    session: WriteSessionDep,
    id: ClusterId,
    zoneName: ZoneName,
    user: Updater,
    body: StartOptions | None = None,
) -> Response:
    return await _zone_operation(session, Operation.START, id, zoneName, user)


@router.post(
    "/api/v2/ob/clusters/{id}/zones/{zoneName}/restart",
    summary="Restart a zone",
    response_model=Envelope[TaskOut],
)
async def restart_zone(
    session: WriteSessionDep,
    id: ClusterId,
    zoneName: ZoneName,
    user: Updater,
    body: RestartOptions | None = None,
) -> Response:
    return await _zone_operation(session, Operation.RESTART, id, zoneName, user, body)


# ------------------------------------------------------------------ server


async def _server_operation(
    session: AsyncSession,
    operation: Operation,
    cluster_id: int,
    server_id: int,
    user: Caller,
    options: StopOptions | None = None,
) -> Response:
    submitted = await service.server_operation(
        session,
        operation=operation,
        cluster_id=cluster_id,
        server_id=server_id,
        options=options,
        caller=user,
    )
    return ok_wire(await full_task(session, submitted.task))


@router.post(
    "/api/v2/ob/clusters/{id}/servers/{serverId}/stop",
    summary="Stop an OB server",
    response_model=Envelope[TaskOut],
)
async def stop_server(
    session: WriteSessionDep,
    id: ClusterId,
    serverId: ServerId,
    user: Updater,
    body: StopOptions | None = None,
) -> Response:
    return await _server_operation(session, Operation.STOP, id, serverId, user, body)


@router.post(
    "/api/v2/ob/clusters/{id}/servers/{serverId}/start",
    summary="Start an OB server",
    response_model=Envelope[TaskOut],
)
async def start_server(
    session: WriteSessionDep,
    id: ClusterId,
    serverId: ServerId,
    user: Updater,
    body: StartOptions | None = None,
) -> Response:
    return await _server_operation(session, Operation.START, id, serverId, user)


@router.post(
    "/api/v2/ob/clusters/{id}/servers/{serverId}/restart",
    summary="Restart an OB server",
    response_model=Envelope[TaskOut],
)
async def restart_server(
    session: WriteSessionDep,
    id: ClusterId,
    serverId: ServerId,
    user: Updater,
    body: RestartOptions | None = None,
) -> Response:
    return await _server_operation(session, Operation.RESTART, id, serverId, user, body)
