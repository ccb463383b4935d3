"""Adding hosts in a batch: every check before any write, then, in the caller's
transaction, the hosts (NEW, no host key yet) and one "Prepare host" task that logs in to
each and checks it (`flows.prepare_host`). No host I/O here: the task does it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.credentials import service as credentials
from obpilot.credentials.models import CredentialType
from obpilot.engine import Context, Submitted, submit_task
from obpilot.errors import BadRequest
from obpilot.flows.prepare_host import HOST_IDS, PREPARE_HOST
from obpilot.iam.permissions import Principal
from obpilot.inventory import service as inventory
from obpilot.inventory.models import HostKind, HostStatus
from obpilot.inventory.schemas import HostCreate
from obpilot.operations.service import Caller
from obpilot.provision.schemas import HostBatchCreate


@dataclass(frozen=True)
class PreparingHosts:
    submitted: Submitted
    host_ids: list[int]


async def batch_create_hosts(
    session: AsyncSession, *, spec: HostBatchCreate, caller: Caller, requester: Principal
) -> PreparingHosts:
    """Records the hosts as NEW and submits their Prepare host task. Any refusal (an
    unknown credential, IDC or type, an address already registered with this port, a LOCAL
    host that is not this machine) comes before any write, so a refused batch changes
    nothing."""
    if spec.credential_id is not None:
        credential = await credentials.get_credential(
            session, credential_id=spec.credential_id, viewer=requester
        )
        if credential.type == CredentialType.PASSWORD and spec.kind != HostKind.LOCAL:
            # Each host's first login comes later, in the task, with no key to check it by.
            raise BadRequest(
                "A batch logs in to hosts whose keys are not known yet, and a password is sent "
                "only to a host whose key is: use a private-key credential, or add each host "
                "with POST /api/v2/compute/hosts and its hostKeyFingerprint"
            )
    hosts = [
        HostCreate(
            alias=spec.alias,
            inner_ip_address=entry.inner_ip_address,
            ssh_port=spec.ssh_port,
            kind=spec.kind,
            credential_id=spec.credential_id,
            description=spec.description,
            idc_id=spec.idc_id,
            type_id=spec.type_id,
        )
        for entry in spec.host_basic_data_list
    ]
    for host in hosts:
        await inventory.check_new_host(session, host)
    host_ids = [
        (await inventory.create_host(session, spec=host, host_key=None, status=HostStatus.NEW)).id
        for host in hosts
    ]
    submitted = await submit_task(
        session,
        PREPARE_HOST,
        Context.of({}, {HOST_IDS: host_ids}),
        creator_id=caller.id,
        creator_name=caller.name,
        executor=caller.instance,
    )
    return PreparingHosts(submitted, host_ids)
