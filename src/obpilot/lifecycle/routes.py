"""Creating and deleting clusters. Each answers at once with its task (OCP's shape A),
plus the new cluster's id at the top of `data`, where OCP's field clients read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from obpilot.api.deps import DatabaseDep, WriteSessionDep
from obpilot.api.envelope import Envelope, NoDataEnvelope, ok, ok_no_data
from obpilot.api.params import ClusterId, ZoneName
from obpilot.credentials.deps import HostAccessDep, SecretBoxDep
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.lifecycle import service
from obpilot.lifecycle.schemas import ClusterCreate, ServersAdd, ServersDelete, ZoneAdd
from obpilot.operations.service import Caller
from obpilot.tasks.schemas import SubmittedTaskOut

router = APIRouter(tags=["clusters"])

Creator = Annotated[Principal, Depends(require("CLUSTER", "CREATE"))]
Deleter = Annotated[Principal, Depends(require("CLUSTER", "DELETE", cluster_id_param="id"))]


class CreatedClusterTaskOut(SubmittedTaskOut):
    cluster_id: int = Field(description="The new cluster's id (also data.cluster.id).")


@router.post(
    "/api/v2/ob/clusters",
    summary="Create an OceanBase cluster on registered hosts from an uploaded package",
    description=(
        "Checks the request, then each host (ports, directories, memory, disk), and answers "
        'with the task "Create primary OB cluster". Every finding comes in one answer, each '
        "in error.subErrors with the field it concerns; nothing is written when any is found."
    ),
)
async def create_cluster(
    request: Request,
    database: DatabaseDep,
    body: ClusterCreate,
    user: Creator,
    host_access: HostAccessDep,
    secret_box: SecretBoxDep,
) -> Envelope[CreatedClusterTaskOut]:
    # No request-wide transaction: the service keeps the hosts' checks outside its own.
    brief, cluster_id = await service.create_cluster(
        database,
        body=body,
        caller=_caller(request, user),
        host_access=host_access,
        secret_box=secret_box,
    )
    return ok(CreatedClusterTaskOut.model_construct(**dict(brief), cluster_id=cluster_id))


@router.delete(
    "/api/v2/ob/clusters/{id}",
    summary="Delete an OceanBase cluster",
    description=(
        'A cluster obpilot created: the task "Delete primary OB cluster" stops its servers, '
        "moves each of its directories (which must carry its ownership marker) to "
        "<dir>.deleted-<taskId> (removed with purge=true; kept as they are with "
        "keepData=true) and forgets it. A cluster obpilot took over is only forgotten, with "
        "keepProcesses=true: its processes and files are never touched."
    ),
)
async def delete_cluster(
    request: Request,
    session: WriteSessionDep,
    id: ClusterId,
    user: Deleter,
    keepData: Annotated[bool, Query(description="Stop and forget; keep every file.")] = False,
    purge: Annotated[bool, Query(description="Remove the directories at once.")] = False,
    keepProcesses: Annotated[
        bool, Query(description="Forget the cluster only; its processes and files stay.")
    ] = False,
) -> Envelope[SubmittedTaskOut] | NoDataEnvelope:
    brief = await service.delete_cluster(
        session,
        cluster_id=id,
        keep_data=keepData,
        purge=purge,
        keep_processes=keepProcesses,
        caller=_caller(request, user),
    )
    return ok_no_data() if brief is None else ok(brief)


Updater = Annotated[Principal, Depends(require("CLUSTER", "UPDATE", cluster_id_param="id"))]


@router.post(
    "/api/v2/ob/clusters/{id}/zones",
    summary="Add a zone with its servers",
    tags=["zones"],
)
async def add_zone(
    request: Request,
    database: DatabaseDep,
    id: ClusterId,
    body: ZoneAdd,
    user: Updater,
    host_access: HostAccessDep,
    secret_box: SecretBoxDep,
) -> Envelope[SubmittedTaskOut]:
    return ok(
        await service.add_zone(
            database,
            cluster_id=id,
            body=body,
            caller=_caller(request, user),
            host_access=host_access,
            secret_box=secret_box,
        )
    )


@router.delete(
    "/api/v2/ob/clusters/{id}/zones/{zoneName}",
    summary="Delete a zone: its servers stopped, their directories moved aside",
    tags=["zones"],
)
async def delete_zone(
    request: Request, session: WriteSessionDep, id: ClusterId, zoneName: ZoneName, user: Updater
) -> Envelope[SubmittedTaskOut]:
    return ok(
        await service.delete_zone(
            session, cluster_id=id, zone_name=zoneName, caller=_caller(request, user)
        )
    )


@router.post(
    "/api/v2/ob/clusters/{id}/servers",
    summary="Add servers to a zone",
    tags=["servers"],
)
async def add_servers(
    request: Request,
    database: DatabaseDep,
    id: ClusterId,
    body: ServersAdd,
    user: Updater,
    host_access: HostAccessDep,
    secret_box: SecretBoxDep,
) -> Envelope[SubmittedTaskOut]:
    return ok(
        await service.add_servers(
            database,
            cluster_id=id,
            body=body,
            caller=_caller(request, user),
            host_access=host_access,
            secret_box=secret_box,
        )
    )


@router.post(
    "/api/v2/ob/clusters/{id}/servers/batchDelete",
    summary="Delete servers: stopped, their directories moved aside",
    tags=["servers"],
)
async def delete_servers(
    request: Request, session: WriteSessionDep, id: ClusterId, body: ServersDelete, user: Updater
) -> Envelope[SubmittedTaskOut]:
    return ok(
        await service.delete_servers(
            session, cluster_id=id, body=body, caller=_caller(request, user)
        )
    )


def _caller(request: Request, user: Principal) -> Caller:
    return Caller.of(user, instance=request.app.state.settings.executor_name)
