"""HTTP routes of obpilot.provision: adding hosts in a batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from obpilot.api.deps import WriteSessionDep
from obpilot.api.envelope import Envelope, ok
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.operations.service import Caller
from obpilot.provision import service
from obpilot.provision.schemas import HostBatchCreate, HostBatchCreated
from obpilot.tasks.service import brief_of

router = APIRouter()


@router.post(
    "/api/v2/compute/hosts/batchCreate",
    tags=["hosts"],
    summary="Add hosts: record them as NEW, then log in to each and check it (Prepare host)",
)
async def batch_create_hosts(
    request: Request,
    session: WriteSessionDep,
    body: HostBatchCreate,
    user: Annotated[Principal, Depends(require("HOST", "CREATE"))],
) -> Envelope[HostBatchCreated]:
    caller = Caller.of(user, instance=request.app.state.settings.executor_name)
    preparing = await service.batch_create_hosts(session, spec=body, caller=caller, requester=user)
    task = preparing.submitted.task
    return ok(
        HostBatchCreated(
            contents=[brief_of(task, preparing.submitted.dag)],
            id=task.id,
            host_ids=preparing.host_ids,
        )
    )
