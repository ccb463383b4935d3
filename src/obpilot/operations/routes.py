"""Operation endpoints: stop, start and restart of a cluster, a zone or a server. Each
answers at once with the task it created (cluster operations in the shape of OCP's
stop-cluster sample; zone and server operations as the full task, as OCP's samples do)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from obpilot.api.deps import WriteSessionDep
from obpilot.api.envelope import Envelope, ok
from obpilot.api.params import ClusterId, ServerId, ZoneName
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.operations import service
from obpilot.operations.schemas import RestartOptions, StartOptions, StopOptions
from obpilot.operations.service import Action, Caller
from obpilot.tasks.schemas import SubmittedTaskOut, TaskOut
from obpilot.tasks.service import brief_task, full_task

router = APIRouter(tags=["cluster operations"])

Updater = Annotated[Principal, Depends(require("CLUSTER", "UPDATE", cluster_id_param="id"))]


def _caller(principal: Principal) -> Caller:
    return Caller(id=principal.id, name=principal.username)


@router.post("/api/v2/ob/clusters/{id}/stop", summary="Stop an OceanBase cluster")
async def stop_cluster(
    session: WriteSessionDep, id: ClusterId, user: Updater, body: StopOptions | None = None
) -> Envelope[SubmittedTaskOut]:
    task = await service.stop_cluster(session, cluster_id=id, options=body, caller=_caller(user))
    return ok(await brief_task(session, task))


@router.post("/api/v2/ob/clusters/{id}/start", summary="Start an OceanBase cluster")
async def start_cluster(
    session: WriteSessionDep, id: ClusterId, user: Updater, body: StartOptions | None = None
) -> Envelope[SubmittedTaskOut]:
    task = await service.start_cluster(session, cluster_id=id, caller=_caller(user))
    return ok(await brief_task(session, task))


@router.post(
    "/api/v2/ob/clusters/{id}/restart",
    summary="Restart an OceanBase cluster (zone by zone with three or more zones)",
)
async def restart_cluster(
    session: WriteSessionDep, id: ClusterId, user: Updater, body: RestartOptions | None = None
) -> Envelope[SubmittedTaskOut]:
    task = await service.restart_cluster(session, cluster_id=id, options=body, caller=_caller(user))
    return ok(await brief_task(session, task))


def _zone_route(action: Action, options: type[StopOptions] | type[StartOptions]) -> None:
    async def endpoint(
        session: WriteSessionDep,
        id: ClusterId,
        zoneName: ZoneName,
        user: Updater,
        body: StopOptions | StartOptions | None = None,
    ) -> Envelope[TaskOut]:
        task = await service.zone_operation(
            session,
            action=action,
            cluster_id=id,
            zone_name=zoneName,
            options=body if isinstance(body, StopOptions) else None,
            caller=_caller(user),
        )
        return ok(await full_task(session, task))

    endpoint.__annotations__["body"] = options | None  # this action's own body model
    endpoint.__name__ = f"{action}_zone"  # the audit log's action
    router.add_api_route(
        f"/api/v2/ob/clusters/{{id}}/zones/{{zoneName}}/{action}",
        endpoint,
        methods=["POST"],
        summary=f"{action.capitalize()} a zone",
    )


def _server_route(action: Action, options: type[StopOptions] | type[StartOptions]) -> None:
    async def endpoint(
        session: WriteSessionDep,
        id: ClusterId,
        serverId: ServerId,
        user: Updater,
        body: StopOptions | StartOptions | None = None,
    ) -> Envelope[TaskOut]:
        task = await service.server_operation(
            session,
            action=action,
            cluster_id=id,
            server_id=serverId,
            options=body if isinstance(body, StopOptions) else None,
            caller=_caller(user),
        )
        return ok(await full_task(session, task))

    endpoint.__annotations__["body"] = options | None
    endpoint.__name__ = f"{action}_server"
    router.add_api_route(
        f"/api/v2/ob/clusters/{{id}}/servers/{{serverId}}/{action}",
        endpoint,
        methods=["POST"],
        summary=f"{action.capitalize()} an OB server",
    )


for _action, _options in (
    (Action.STOP, StopOptions),
    (Action.START, StartOptions),
    (Action.RESTART, RestartOptions),
):
    _zone_route(_action, _options)
    _server_route(_action, _options)
