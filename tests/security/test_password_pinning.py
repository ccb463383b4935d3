"""Finding 2 (pinning): the first login trusted any host key, so a HOST_MANAGER who named an
address and port of their choosing (a fake SSH server) was sent the password credential's
password. A password goes only to a host whose key fingerprint the request names; this
fake server, built with asyncssh on 127.0.0.1, records every password offered to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import httpx
import pytest

from tests.credentials.test_routes import BASE, password_credential
from tests.provision.test_routes import placement


@dataclass
class PasswordTrap:
    port: int
    fingerprint: str
    offered: list[str] = field(default_factory=list)


@pytest.fixture
async def trap() -> AsyncIterator[PasswordTrap]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    trap = PasswordTrap(0, str(host_key.get_fingerprint("sha256")))

    class Recorder(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            trap.offered.append(password)
            return False

    server: Any = await asyncssh.create_server(
        Recorder, "127.0.0.1", 0, server_host_keys=[host_key]
    )
    trap.port = server.sockets[0].getsockname()[1]
    try:
        yield trap
    finally:
        server.close()
        await server.wait_closed()


def ssh_host(port: int, credential_id: int, **extra: object) -> dict[str, object]:
    return {
        "innerIpAddress": "127.0.0.1",
        "sshPort": port,
        "kind": "DEDICATED_PHYSICAL_MACHINE",
        "credentialId": credential_id,
        **extra,
    }


async def test_a_password_is_never_sent_to_an_unpinned_host(
    client: httpx.AsyncClient, trap: PasswordTrap
) -> None:
    credential = (await client.post(BASE, json=password_credential("root"))).json()["data"]
    hosts = "/api/v2/compute/hosts"
    unpinned = await client.post(hosts, json=ssh_host(trap.port, credential["id"]))
    assert unpinned.status_code == 400, unpinned.text
    assert "hostKeyFingerprint" in unpinned.json()["error"]["message"]
    other = str(asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256"))
    wrong = await client.post(
        hosts, json=ssh_host(trap.port, credential["id"], hostKeyFingerprint=other)
    )
    assert wrong.status_code == 400, wrong.text
    assert f"it offered {trap.fingerprint}, not {other}" in wrong.text
    assert trap.offered == []
    assert (await client.get(hosts)).json()["data"]["page"]["totalElements"] == 0

    # Pinned to the key it really has: the password goes to it (and is refused there).
    pinned = await client.post(
        hosts, json=ssh_host(trap.port, credential["id"], hostKeyFingerprint=trap.fingerprint)
    )
    assert pinned.status_code == 400, pinned.text
    assert trap.offered
    assert (await client.get(hosts)).json()["data"]["page"]["totalElements"] == 0


async def test_a_batch_never_sends_a_password(
    client: httpx.AsyncClient, trap: PasswordTrap
) -> None:
    credential = (await client.post(BASE, json=password_credential("root"))).json()["data"]
    place = await placement(client)
    refused = await client.post(
        "/api/v2/compute/hosts/batchCreate",
        json={
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": trap.port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            **place,
            "credentialId": credential["id"],
        },
    )
    assert refused.status_code == 400, refused.text
    assert "private-key credential" in refused.json()["error"]["message"]
    assert trap.offered == []
