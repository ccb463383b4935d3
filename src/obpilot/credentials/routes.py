"""Credential HTTP routes (the secret goes in once and never comes back out), and adding a
host, which logs in with a credential before the inventory records the host."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from obpilot.api.deps import DatabaseDep, SessionDep
from obpilot.api.envelope import Envelope, NoDataEnvelope, Page, ok, ok_no_data
from obpilot.api.pagination import make_page, page_params
from obpilot.api.params import CredentialId
from obpilot.credentials import service
from obpilot.credentials.deps import HostAccessDep, SecretBoxDep
from obpilot.credentials.models import Credential
from obpilot.credentials.repository import CREDENTIAL_SORT
from obpilot.credentials.schemas import CredentialCreate, CredentialOut, SshCredentialOut
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.inventory.schemas import HostCreate, HostOut, host_out
from obpilot.paging import PageRequest

router = APIRouter()

BASE = "/api/v2/profiles/me/credentials"
CredentialPage = Annotated[PageRequest, Depends(page_params(CREDENTIAL_SORT))]


def credential_out(credential: Credential) -> CredentialOut:
    return CredentialOut(
        id=credential.id,
        name=credential.name,
        description=credential.description,
        target_type=credential.target_type,
        ssh_credential_property=SshCredentialOut(
            type=credential.type, username=credential.username
        ),
        create_time=credential.create_time,
        update_time=credential.update_time,
    )


@router.post(
    BASE,
    tags=["credentials"],
    summary="Create an SSH credential for hosts (the secret is stored encrypted), yours",
)
async def create_credential(
    session: SessionDep,
    secret_box: SecretBoxDep,
    body: CredentialCreate,
    user: Annotated[Principal, Depends(require("HOST", "CREATE"))],
) -> Envelope[CredentialOut]:
    credential = await service.create_credential(
        session, spec=body, secret_box=secret_box, owner=user
    )
    return ok(credential_out(credential))


@router.get(
    BASE,
    tags=["credentials"],
    summary="List your credentials (never their secrets); CREDENTIAL:*:USE lists everyone's",
)
async def list_credentials(
    session: SessionDep,
    page: CredentialPage,
    user: Annotated[Principal, Depends(require("HOST", "READ"))],
) -> Envelope[Page[CredentialOut]]:
    credentials, total = await service.list_credentials(session, page=page, viewer=user)
    return ok(make_page([credential_out(c) for c in credentials], total, page))


@router.get(
    BASE + "/{credentialId}",
    tags=["credentials"],
    summary="Get one of your credentials (never its secret)",
)
async def get_credential(
    session: SessionDep,
    credentialId: CredentialId,
    user: Annotated[Principal, Depends(require("HOST", "READ"))],
) -> Envelope[CredentialOut]:
    credential = await service.get_credential(session, credential_id=credentialId, viewer=user)
    return ok(credential_out(credential))


@router.delete(
    BASE + "/{credentialId}",
    tags=["credentials"],
    summary="Delete one of your credentials that no host uses",
)
async def delete_credential(
    session: SessionDep,
    credentialId: CredentialId,
    user: Annotated[Principal, Depends(require("HOST", "DELETE"))],
) -> NoDataEnvelope:
    await service.delete_credential(session, credential_id=credentialId, viewer=user)
    return ok_no_data()


@router.post(
    "/api/v2/compute/hosts",
    tags=["hosts"],
    summary="Add a host (with a credential of yours)",
)
async def create_host(
    database: DatabaseDep,
    body: HostCreate,
    host_access: HostAccessDep,
    secret_box: SecretBoxDep,
    user: Annotated[Principal, Depends(require("HOST", "CREATE"))],
) -> Envelope[HostOut]:
    # No request-wide transaction: the service keeps the SSH login outside its own.
    host, catalog = await service.add_reachable_host(
        database, spec=body, host_access=host_access, secret_box=secret_box, requester=user
    )
    return ok(host_out(host, catalog))
