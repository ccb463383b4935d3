"""Adding an SSH host logs in once with its credential and records its host key; later
connections accept only that key. Against a real sshd on a loopback port, and against a
stand-in login that watches the metadb: the login holds no transaction, and what changed
meanwhile is checked again before the host is recorded."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, select, update

from obpilot.credentials import service
from obpilot.credentials.deps import get_host_access
from obpilot.credentials.models import Credential
from obpilot.db.engine import Database
from obpilot.errors import HostKeyChanged
from obpilot.hosts.access import HostAccess, LocalTarget
from obpilot.hosts.ssh import SshTarget, host_key_fingerprint
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Host
from obpilot.inventory.schemas import HostCreate
from obpilot.secretbox import SecretBox
from tests.support.databases import free_port
from tests.support.sshd import SshServer

SECRET_KEY = b"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
CREDENTIALS = "/api/v2/profiles/me/credentials"
HOSTS = "/api/v2/compute/hosts"


async def add_key_credential(client: httpx.AsyncClient, username: str, key: str) -> int:
    response = await client.post(
        CREDENTIALS,
        json={
            "name": f"key-{free_port()}",
            "sshCredentialProperty": {
                "type": "PRIVATE_KEY",
                "username": username,
                "privateKey": key,
            },
        },
    )
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["id"])


async def test_adding_an_ssh_host_records_its_key_and_a_changed_key_is_refused(
    any_client: httpx.AsyncClient, any_database: Database, sshd: SshServer, tmp_path: object
) -> None:
    credential_id = await add_key_credential(any_client, sshd.username, sshd.client_key)
    added = await any_client.post(
        HOSTS,
        json={
            "name": "loopback",
            "innerIpAddress": "127.0.0.1",
            "sshPort": sshd.port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential_id,
        },
    )
    assert added.status_code == 200, added.text
    assert added.json()["data"]["hostKeyFingerprint"] == host_key_fingerprint(sshd.host_key)
    async with any_database.transaction() as session:
        host = await session.scalar(select(Host).where(Host.name == "loopback"))
        assert host is not None
        assert host.host_key == sshd.host_key

    box = SecretBox.from_settings(home=tmp_path, key=None)  # type: ignore[arg-type]
    access = HostAccess()
    try:
        async with any_database.transaction() as session:
            target = await service.host_target(session, host=host, secret_box=box)
        executor = access.executor(host.id, target)
        result = await executor.run(["echo", "reached"], step="check", time_limit=10)
        assert result.stdout == "reached\n"

        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh")
        async with any_database.transaction(write=True) as session:
            await session.execute(
                update(Host).where(Host.id == host.id).values(host_key=other.decode().strip())
            )
        async with any_database.transaction() as session:
            changed = await session.get(Host, host.id)
            assert changed is not None
            target = await service.host_target(session, host=changed, secret_box=box)
        with pytest.raises(HostKeyChanged, match="refusing to connect"):
            await access.executor(host.id, target).run(["true"], step="check", time_limit=10)
    finally:
        await access.close()


@pytest.mark.parametrize("problem", ["closed port", "wrong key"])
async def test_a_host_that_cannot_be_reached_is_not_added(
    client: httpx.AsyncClient, sshd: SshServer, problem: str
) -> None:
    if problem == "wrong key":
        stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
        credential_id = await add_key_credential(client, sshd.username, stranger)
        port, expected = sshd.port, "authentication failed"
    else:
        credential_id = await add_key_credential(client, sshd.username, sshd.client_key)
        port, expected = free_port(), "unreachable"
    response = await client.post(
        HOSTS,
        json={"innerIpAddress": "127.0.0.1", "sshPort": port, "credentialId": credential_id},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "CMP07002"
    assert expected in error["message"]
    assert f"127.0.0.1:{port}" in error["message"]
    listed = await client.get(HOSTS)
    assert listed.json()["data"]["page"]["totalElements"] == 0


async def test_an_ssh_host_needs_a_credential(client: httpx.AsyncClient) -> None:
    response = await client.post(HOSTS, json={"innerIpAddress": "10.0.0.7", "sshPort": 22})
    assert response.status_code == 400
    assert "credentialId" in response.json()["error"]["message"]
    unknown = await client.post(
        HOSTS, json={"innerIpAddress": "10.0.0.7", "sshPort": 22, "credentialId": 999}
    )
    assert unknown.status_code == 404
    assert "Credential <999>" in unknown.json()["error"]["message"]


async def test_a_local_host_needs_no_connection(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await client.post(HOSTS, json={"innerIpAddress": "127.0.0.1", "kind": "LOCAL"})
    assert response.status_code == 200
    assert response.json()["data"]["hostKeyFingerprint"] is None
    async with database.transaction() as session:
        host = await session.scalar(select(Host))
        assert host is not None
        target = await service.host_target(session, host=host, secret_box=SecretBox(SECRET_KEY))
    assert target == LocalTarget()


STAND_IN_KEY = (
    asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
)


class HeldConnections:
    """How many connections of a metadb's pool each asyncio task holds: a transaction holds
    one from its start to its end. (Under httpx's ASGI transport a request runs in the
    task of the client's call.)"""

    def __init__(self, database: Database) -> None:
        self.by_task: Counter[asyncio.Task[Any] | None] = Counter()
        pool = database.engine.sync_engine.pool
        event.listen(pool, "checkout", lambda *_: self._count(+1))
        event.listen(pool, "checkin", lambda *_: self._count(-1))

    def _count(self, change: int) -> None:
        self.by_task[asyncio.current_task()] += change

    def here(self) -> int:
        return self.by_task[asyncio.current_task()]


class StandInLogin(HostAccess):
    """Logs in to no host: notes how many metadb connections the request holds meanwhile,
    runs `meanwhile` (another request's work), and answers a host key."""

    def __init__(self, database: Database, meanwhile: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self.connections = HeldConnections(database)
        self.meanwhile = meanwhile
        self.held_during_logins: list[int] = []

    async def record_host_key(
        self, target: SshTarget, *, step: str = "record host key", fingerprint: str | None = None
    ) -> str:
        assert fingerprint == host_key_fingerprint(STAND_IN_KEY)  # a password's host is pinned
        self.held_during_logins.append(self.connections.here())
        await self.meanwhile()
        return STAND_IN_KEY


async def _add_ssh_host(
    app: FastAPI, client: httpx.AsyncClient, meanwhile: Callable[[], Awaitable[None]]
) -> tuple[httpx.Response, StandInLogin]:
    credential = await client.post(
        CREDENTIALS,
        json={
            "name": "ops",
            "sshCredentialProperty": {"type": "PASSWORD", "username": "u", "password": "p"},
        },
    )
    assert credential.status_code == 200, credential.text
    login = StandInLogin(app.state.database, meanwhile)
    app.dependency_overrides[get_host_access] = lambda: login
    response = await client.post(
        HOSTS,
        json={
            "name": "db1",
            "innerIpAddress": "10.0.0.7",
            "sshPort": 22,
            "credentialId": credential.json()["data"]["id"],
            "hostKeyFingerprint": host_key_fingerprint(STAND_IN_KEY),
        },
    )
    return response, login


async def test_the_login_holds_no_metadb_transaction(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def write_meanwhile() -> None:
        # On SQLite, a write transaction the request held would keep this one waiting.
        async with app.state.database.transaction(write=True) as session:
            await session.execute(update(Credential).values(description="used meanwhile"))

    response, login = await _add_ssh_host(app, client, write_meanwhile)
    assert login.held_during_logins == [0]
    assert response.status_code == 200, response.text
    assert response.json()["data"]["hostKeyFingerprint"] == host_key_fingerprint(STAND_IN_KEY)


async def _take_the_address(database: Database) -> None:
    async with database.transaction(write=True) as session:
        spec = HostCreate(name="db2", inner_ip_address="10.0.0.7", ssh_port=22)
        await inventory.create_host(session, spec=spec, host_key=STAND_IN_KEY)


async def _delete_the_credential(database: Database) -> None:
    async with database.transaction(write=True) as session:
        await session.execute(delete(Credential))


@pytest.mark.parametrize(
    ("meanwhile", "status", "code", "hosts"),
    [(_take_the_address, 409, "CMP07001", ["db2"]), (_delete_the_credential, 404, "COM10002", [])],
)
async def test_what_changed_during_the_login_is_checked_again(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    meanwhile: Callable[[Database], Awaitable[None]],
    status: int,
    code: str,
    hosts: list[str],
) -> None:
    response, login = await _add_ssh_host(app, client, lambda: meanwhile(database))
    assert login.held_during_logins == [0]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    async with database.transaction() as session:
        assert list(await session.scalars(select(Host.name))) == hosts
