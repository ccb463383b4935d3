"""SSH credentials through the API: the secret goes in once, is stored encrypted, and
never comes back out."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import httpx
from sqlalchemy import select

from obpilot.credentials.models import Credential
from obpilot.db.engine import Database
from obpilot.secretbox import SecretBox
from tests.conftest import UserClientFactory

BASE = "/api/v2/profiles/me/credentials"
PASSWORD = "Very-Secret-ssh-pw-42"


def password_credential(name: str = "ops", password: str = PASSWORD) -> dict[str, object]:
    return {
        "name": name,
        "description": "ops account",
        "targetType": "HOST",
        "sshCredentialProperty": {"type": "PASSWORD", "username": "admin", "password": password},
    }


def key_credential(name: str, key: str, passphrase: str | None = None) -> dict[str, object]:
    ssh: dict[str, object] = {"type": "PRIVATE_KEY", "username": "root", "privateKey": key}
    if passphrase is not None:
        ssh["passphrase"] = passphrase
    return {"name": name, "sshCredentialProperty": ssh}


async def test_a_password_credential_is_stored_encrypted_and_never_returned(
    any_client: httpx.AsyncClient, any_database: Database, tmp_path: Path
) -> None:
    created = await any_client.post(BASE, json=password_credential())
    assert created.status_code == 200, created.text
    data = created.json()["data"]
    assert data["name"] == "ops"
    assert data["targetType"] == "HOST"
    assert data["sshCredentialProperty"] == {"type": "PASSWORD", "username": "admin"}
    listed = await any_client.get(BASE)
    one = await any_client.get(f"{BASE}/{data['id']}")
    for response in (created, listed, one):
        assert PASSWORD not in response.text
    assert listed.json()["data"]["page"]["totalElements"] == 1
    assert one.json()["data"]["sshCredentialProperty"]["username"] == "admin"
    async with any_database.transaction() as session:
        row = await session.scalar(select(Credential))
    assert row is not None
    assert PASSWORD not in row.secret_encrypted
    assert (
        SecretBox.from_settings(home=tmp_path, key=None).decrypt(row.secret_encrypted) == PASSWORD
    )


async def test_a_private_key_with_its_passphrase(client: httpx.AsyncClient) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    locked = key.export_private_key(passphrase="open sesame").decode()
    wrong = await client.post(BASE, json=key_credential("k1", locked, passphrase="nope"))
    assert wrong.status_code == 400
    assert "privateKey cannot be read" in wrong.json()["error"]["message"]
    missing = await client.post(BASE, json=key_credential("k1", locked))
    assert missing.status_code == 400
    right = await client.post(BASE, json=key_credential("k1", locked, passphrase="open sesame"))
    assert right.status_code == 200, right.text
    assert "PRIVATE KEY" not in right.text
    assert "open sesame" not in right.text


async def test_bad_credentials_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        {"name": "a", "sshCredentialProperty": {"type": "PASSWORD", "username": "root"}},
        {
            "name": "b",
            "sshCredentialProperty": {
                "type": "PASSWORD",
                "username": "root",
                "password": "x",
                "privateKey": "y",
            },
        },
        key_credential("c", "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n"),
        {"name": "d", "sshCredentialProperty": {"type": "TOKEN", "username": "root"}},
        {
            "name": "e",
            "sshCredentialProperty": {"type": "PASSWORD", "username": "a b", "password": "x"},
        },
        {
            "name": "",
            "sshCredentialProperty": {"type": "PASSWORD", "username": "r", "password": "x"},
        },
    ]
    for body in cases:
        response = await client.post(BASE, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "COM10001"
    listed = await client.get(BASE)
    assert listed.json()["data"]["page"]["totalElements"] == 0


async def test_names_are_unique(client: httpx.AsyncClient) -> None:
    assert (await client.post(BASE, json=password_credential("same"))).status_code == 200
    again = await client.post(BASE, json=password_credential("same"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "COM10006"


async def test_delete_refuses_a_credential_in_use(client: httpx.AsyncClient) -> None:
    credential = (await client.post(BASE, json=password_credential())).json()["data"]
    host = await client.post(
        "/api/v2/compute/hosts",
        json={
            "name": "me",
            "innerIpAddress": "127.0.0.1",
            "kind": "LOCAL",
            "credentialId": credential["id"],
        },
    )
    assert host.status_code == 200, host.text
    refused = await client.delete(f"{BASE}/{credential['id']}")
    assert refused.status_code == 409
    assert "used by host(s) me" in refused.json()["error"]["message"]
    assert (await client.delete(f"/api/v2/compute/hosts/{host.json()['data']['id']}")).is_success
    assert (await client.delete(f"{BASE}/{credential['id']}")).is_success
    gone = await client.get(f"{BASE}/{credential['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "COM10002"


async def test_credential_id_0_is_none_for_a_local_host_and_an_error_for_an_ssh_host(
    client: httpx.AsyncClient,
) -> None:
    """OCP's clients send credentialId 0 when none is set."""
    hosts = "/api/v2/compute/hosts"
    ssh = {"name": "far", "innerIpAddress": "10.0.0.1", "kind": "DEDICATED_PHYSICAL_MACHINE"}
    refused = await client.post(hosts, json={**ssh, "credentialId": 0})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "COM10001"
    assert "credentialId 0 names no credential" in refused.json()["error"]["message"]
    assert (await client.get(hosts)).json()["data"]["page"]["totalElements"] == 0
    local = {"name": "me", "innerIpAddress": "127.0.0.1", "kind": "LOCAL", "credentialId": 0}
    added = await client.post(hosts, json=local)
    assert added.status_code == 200, added.text
    assert added.json()["data"]["credentialId"] is None


async def test_viewing_and_managing_need_host_permissions(
    client: httpx.AsyncClient, client_as: UserClientFactory
) -> None:
    await client.post(BASE, json=password_credential())
    viewer = await client_as("HOST_VIEWER")
    assert (await viewer.get(BASE)).status_code == 200
    refused = await viewer.post(BASE, json=password_credential("mine"))
    assert refused.status_code == 403
    manager = await client_as("HOST_MANAGER")
    assert (await manager.post(BASE, json=password_credential("mine"))).status_code == 200
