"""Credential rules, and how a host is reached with one: adding a host proves its
credential by logging in once (and pins its SSH host key), outside any metadb transaction,
and a stored host becomes something obpilot can connect to. The host itself is recorded by
the inventory."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.compute.service import HostCatalog
from obpilot.credentials.models import Credential, CredentialType
from obpilot.credentials.repository import CredentialRepository
from obpilot.credentials.schemas import CredentialCreate
from obpilot.db.engine import Database
from obpilot.errors import BadRequest, CredentialInUse, CredentialNotFound, DuplicateName
from obpilot.hosts.access import HostAccess, HostTarget, LocalTarget
from obpilot.hosts.ssh import SshCredential, SshTarget, UnreadablePrivateKey, check_private_key
from obpilot.iam.permissions import Principal, required
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Host, HostKind
from obpilot.inventory.schemas import HostCreate
from obpilot.paging import PageRequest
from obpilot.secretbox import SecretBox

#: Lets its holder see and use every user's credentials (ADMIN holds it, through `**`).
USE_EVERY_CREDENTIAL = required("CREDENTIAL", "USE")


def may_use(user: Principal, credential: Credential) -> bool:
    """A credential is its owner's: only they see it, list it, delete it and add hosts with
    it, but for holders of `CREDENTIAL:*:USE`."""
    return credential.owner_id == user.id or user.permissions.allows(USE_EVERY_CREDENTIAL)


async def create_credential(
    session: AsyncSession, *, spec: CredentialCreate, secret_box: SecretBox, owner: Principal
) -> Credential:
    credentials = CredentialRepository(session)
    if await credentials.get_by_name(owner.id, spec.name) is not None:
        raise DuplicateName(f"You have a credential named {spec.name!r} already")
    ssh = spec.ssh_credential_property
    passphrase = ssh.passphrase.get_secret_value() if ssh.passphrase else None
    if ssh.type == CredentialType.PRIVATE_KEY:
        assert ssh.private_key is not None
        secret = ssh.private_key.get_secret_value()
        try:
            check_private_key(secret, passphrase)
        except UnreadablePrivateKey as error:
            raise BadRequest(f"privateKey cannot be read: {error}") from None
    else:
        assert ssh.password is not None
        secret = ssh.password.get_secret_value()
    return await credentials.add(
        Credential(
            owner_id=owner.id,
            name=spec.name,
            description=spec.description,
            target_type=spec.target_type,
            type=ssh.type,
            username=ssh.username,
            secret_encrypted=secret_box.encrypt(secret),
            passphrase_encrypted=secret_box.encrypt(passphrase) if passphrase else None,
        )
    )


async def list_credentials(
    session: AsyncSession, *, page: PageRequest, viewer: Principal
) -> tuple[list[Credential], int]:
    every = viewer.permissions.allows(USE_EVERY_CREDENTIAL)
    return await CredentialRepository(session).page(page, owner_id=None if every else viewer.id)


async def get_credential(
    session: AsyncSession, *, credential_id: int, viewer: Principal
) -> Credential:
    """The credential, for a user who may use it; another's is not found, as a missing one."""
    credential = await _stored(session, credential_id)
    if not may_use(viewer, credential):
        raise CredentialNotFound(credential_id)
    return credential


async def _stored(session: AsyncSession, credential_id: int) -> Credential:
    """A stored credential, whoever owns it: what a stored host is reached with."""
    credential = await CredentialRepository(session).get(credential_id)
    if credential is None:
        raise CredentialNotFound(credential_id)
    return credential


async def delete_credential(
    session: AsyncSession, *, credential_id: int, viewer: Principal
) -> None:
    credentials = CredentialRepository(session)
    credential = await get_credential(session, credential_id=credential_id, viewer=viewer)
    hosts = await inventory.host_names_using_credential(session, credential_id)
    if hosts:
        raise CredentialInUse(
            f"Credential {credential.name} is used by host(s) {', '.join(hosts[:10])}; "
            "delete those hosts first"
        )
    await credentials.delete(credential)


def ssh_credential(credential: Credential, secret_box: SecretBox) -> SshCredential:
    secret = secret_box.decrypt(credential.secret_encrypted)
    if credential.type == CredentialType.PRIVATE_KEY:
        passphrase = (
            secret_box.decrypt(credential.passphrase_encrypted)
            if credential.passphrase_encrypted
            else None
        )
        return SshCredential(credential.username, private_key=secret, passphrase=passphrase)
    return SshCredential(credential.username, password=secret)


async def ssh_target(
    session: AsyncSession,
    *,
    address: str,
    ssh_port: int,
    credential_id: int | None,
    host_key: str | None,
    secret_box: SecretBox,
) -> SshTarget:
    if credential_id is None:
        raise BadRequest("An SSH host needs credentialId (a credential to log in with)")
    credential = await _stored(session, credential_id)
    return SshTarget(
        address=address,
        port=ssh_port,
        credential=ssh_credential(credential, secret_box),
        host_key=host_key,
    )


async def host_target(session: AsyncSession, *, host: Host, secret_box: SecretBox) -> HostTarget:
    """How to reach a stored host: this machine for a LOCAL host, otherwise SSH with its
    credential and the host key recorded when it was added. Read it inside a
    transaction, then use it (`HostAccess.executor(host.id, target)`) outside one."""
    if host.kind == HostKind.LOCAL:
        return LocalTarget()
    return await ssh_target(
        session,
        address=host.inner_ip_address,
        ssh_port=host.ssh_port,
        credential_id=host.credential_id,
        host_key=host.host_key,
        secret_box=secret_box,
    )


async def add_reachable_host(
    database: Database,
    *,
    spec: HostCreate,
    host_access: HostAccess,
    secret_box: SecretBox,
    requester: Principal,
) -> tuple[Host, HostCatalog]:
    """Adds a host. Any kind but LOCAL is reached over SSH: obpilot logs in once with the
    given credential (which proves address, port, credential and a usable python3) and
    records the host key, which every later connection must present.

    The login, up to ssh_connect_timeout, holds no metadb transaction: a short read checks
    the request and reads the credential, the login follows, and `add_host` checks again
    and records the host in a short write. Returns the host with what its IDC and type
    name."""
    async with database.transaction() as session:
        name = await inventory.check_new_host(session, spec)
        if spec.credential_id is not None:  # only a credential the requester may use
            credential = await get_credential(
                session, credential_id=spec.credential_id, viewer=requester
            )
            sends_password = credential.type == CredentialType.PASSWORD
            if sends_password and spec.kind != HostKind.LOCAL and not spec.host_key_fingerprint:
                raise BadRequest(
                    "A password is sent only to a host whose key is known: give "
                    "hostKeyFingerprint (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
                    "on the host prints it), or use a private-key credential"
                )
        target = None
        if spec.kind != HostKind.LOCAL:
            target = await ssh_target(
                session,
                address=spec.inner_ip_address,
                ssh_port=spec.ssh_port,
                credential_id=spec.credential_id,
                host_key=None,
                secret_box=secret_box,
            )
    host_key = None
    if target is not None:
        host_key = await first_login(
            host_access, target, host_name=name, fingerprint=spec.host_key_fingerprint
        )
    async with database.transaction(write=True) as session:
        host = await add_host(session, spec=spec, host_key=host_key)
        return host, await inventory.host_catalog(session, [host])


async def first_login(
    host_access: HostAccess, target: SshTarget, *, host_name: str, fingerprint: str | None = None
) -> str:
    """Logs in to a new SSH host (which proves address, port, credential and a usable
    python3) and returns the host key it offered (the one `fingerprint` names, when given),
    to be recorded: every later connection must present it."""
    return await host_access.record_host_key(
        target, step=f"add host {host_name}", fingerprint=fingerprint
    )


async def pinned_host_target(
    database: Database, *, host_id: int, host_access: HostAccess, secret_box: SecretBox
) -> tuple[Host, HostTarget]:
    """A stored host and how to reach it. A host recorded without a host key (a batch's:
    nobody logged in to it before its task) gets one first, as `add_reachable_host` does:
    the key its first login offers is recorded (the first recorded stays). Short
    transactions around the login."""
    async with database.transaction() as session:
        host = await inventory.get_host(session, host_id=host_id)
        target = await host_target(session, host=host, secret_box=secret_box)
    if isinstance(target, SshTarget) and target.host_key is None:
        offered = await first_login(host_access, target, host_name=host.name)
        async with database.transaction(write=True) as session:
            pinned = await inventory.pin_host_key(session, host_id, offered)
        target = replace(target, host_key=pinned)
    return host, target


async def add_host(session: AsyncSession, *, spec: HostCreate, host_key: str | None = None) -> Host:
    """Records a host in the caller's transaction: its credential, if any, must (still)
    exist, and any kind but LOCAL needs the host key its login pinned
    (`add_reachable_host`)."""
    if spec.credential_id is not None:
        await _stored(session, spec.credential_id)
    if spec.kind != HostKind.LOCAL and host_key is None:
        raise RuntimeError("an SSH host is recorded with the host key of its first login")
    return await inventory.create_host(session, spec=spec, host_key=host_key)
