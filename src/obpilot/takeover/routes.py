"""Takeover and forget endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from obpilot.api.deps import WriteSessionDep
from obpilot.api.envelope import Envelope, ok
from obpilot.credentials.deps import SecretBoxDep
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.operations.service import Caller
from obpilot.takeover import service
from obpilot.takeover.schemas import TakeOverRequest
from obpilot.tasks.schemas import SubmittedTaskOut
from obpilot.tasks.service import brief_of

router = APIRouter(tags=["clusters"])

Creator = Annotated[Principal, Depends(require("CLUSTER", "CREATE"))]


@router.post(
    "/api/v2/ob/clusters/takeOver",
    summary="Take over an OceanBase cluster whose server processes already exist",
    description=(
        "Registers the cluster (status TAKINGOVER) and answers with the task "
        '"Take over OB cluster", which checks every server on its host and records its real '
        "status (RUNNING or STOPPED) and version. No process is started or stopped."
    ),
)
async def take_over_cluster(
    request: Request,
    session: WriteSessionDep,
    body: TakeOverRequest,
    user: Creator,
    secret_box: SecretBoxDep,
) -> Envelope[SubmittedTaskOut]:
    submitted = await service.take_over(
        session,
        request=body,
        caller=Caller.of(user, instance=request.app.state.settings.executor_name),
        secret_box=secret_box,
    )
    return ok(brief_of(submitted.task, submitted.dag))
