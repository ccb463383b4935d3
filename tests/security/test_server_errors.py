"""Finding 18: requests that reached the metadb or a host before their flaw showed answered
500. A home path whose binary path no longer fits its column, an `InstallPath` from which
such homes are derived, startup parameters named like a credential: each is a 400 naming
its field, and nothing is registered. A host whose Python answers the probe with garbage
is a clear host error."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import String, select

from obpilot.db.engine import Database
from obpilot.errors import HostError
from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.protocol import TAIL
from obpilot.inventory.models import Cluster, Host, Server
from obpilot.lifecycle.schemas import HOME_PATH_LENGTH, SERVER_PATH_LENGTH
from obpilot.packages.contents import binary_relative_path
from obpilot.packages.models import PackageKind, SoftwarePackage
from tests.credentials.test_service import add_key_credential
from tests.packages.conftest import seekdb_rpm
from tests.support.lifecycle import PASSWORD
from tests.support.sshd import SshServer

CLUSTERS = "/api/v2/ob/clusters"
TAKE_OVER = "/api/v2/ob/clusters/takeOver"
HOSTS = "/api/v2/compute/hosts"
#: The length of `ob_server.home_path` and `binary_path`.
COLUMN = cast(String, Server.__table__.c.home_path.type).length or 0
RPM_NAME = "seekdb-1.0.0.0-100000012025112711.el8.aarch64.rpm"


def long_path(base: Path, length: int) -> str:
    """An absolute path of exactly `length` characters under `base` (names of at most
    200 characters, as file systems allow)."""
    path = str(base)
    while len(path) < length:
        path += "/" + "d" * min(200, length - len(path) - 1)
    assert len(path) == length
    return path


@pytest.fixture
async def host_id(client: httpx.AsyncClient) -> int:
    added = await client.post(HOSTS, json={"innerIpAddress": "127.0.0.1", "kind": "LOCAL"})
    assert added.status_code == 200, added.text
    return int(added.json()["data"]["id"])


@pytest.fixture
async def package(client: httpx.AsyncClient) -> str:
    answer = await client.post(
        "/api/v2/software-packages", files={"file": (RPM_NAME, seekdb_rpm())}
    )
    assert answer.status_code == 200, answer.text
    return RPM_NAME


def create_body(host_id: int, rpm: str, server: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "name": "c18",
        "rpmName": rpm,
        "password": PASSWORD,
        "zones": [{"name": "zone1", "servers": [{"hostId": host_id, **server}]}],
        **more,
    }


async def assert_refused(
    response: httpx.Response, database: Database, field: str, *words: str
) -> None:
    body = response.json()
    assert response.status_code == 400, body
    assert body["error"]["code"] == "COM10001", body
    fields = [problem["field"] for problem in body["error"].get("subErrors", [])]
    assert field in fields or field in body["error"]["message"], body
    for word in words:
        assert word in body["error"]["message"], body
    async with database.transaction() as session:
        assert list(await session.scalars(select(Cluster))) == []


@pytest.mark.parametrize("kind", [PackageKind.SEEKDB_RPM, PackageKind.OCEANBASE_RPM])
def test_the_longest_home_leaves_room_for_its_binary(kind: PackageKind) -> None:
    binary = binary_relative_path(SoftwarePackage(kind=kind, file_name="p.rpm"))
    assert SERVER_PATH_LENGTH == COLUMN == cast(String, Server.__table__.c.binary_path.type).length
    assert HOME_PATH_LENGTH + len("/" + binary) <= COLUMN


async def test_a_home_whose_binary_would_not_fit_is_refused(
    client: httpx.AsyncClient, database: Database, host_id: int, package: str, tmp_path: Path
) -> None:
    home = long_path(tmp_path, COLUMN - 4)  # fits itself; home + "/bin/seekdb" does not
    response = await client.post(
        CLUSTERS, json=create_body(host_id, package, {"sqlPort": 2881, "homePath": home})
    )
    await assert_refused(response, database, "zones[0].servers[0].homePath")


async def test_a_base_dir_whose_binary_would_not_fit_is_refused(
    client: httpx.AsyncClient, database: Database, host_id: int, package: str, tmp_path: Path
) -> None:
    base_dir = long_path(tmp_path, COLUMN)
    response = await client.post(
        CLUSTERS, json=create_body(host_id, package, {"sqlPort": 2881, "baseDir": base_dir})
    )
    await assert_refused(response, database, "zones[0].servers[0].baseDir")


@pytest.mark.parametrize("install_length", [400, 600])
async def test_an_install_path_whose_homes_would_not_fit_is_refused(
    client: httpx.AsyncClient,
    database: Database,
    host_id: int,
    package: str,
    tmp_path: Path,
    install_length: int,
) -> None:
    """A server without a home gets `InstallPath/<cluster>/<zone>-<sqlPort>`."""
    install = long_path(tmp_path, install_length)
    zone = "z" * 100
    body = create_body(host_id, package, {"sqlPort": 2881}, attributes={"InstallPath": install})
    body["zones"][0]["name"] = zone
    response = await client.post(CLUSTERS, json=body)
    await assert_refused(response, database, "attributes", "InstallPath")


@pytest.mark.parametrize("name", ["root_password", "proxyro_password", "backup_SECRET"])
async def test_startup_parameters_named_like_a_credential_are_refused(
    client: httpx.AsyncClient,
    database: Database,
    host_id: int,
    package: str,
    tmp_path: Path,
    name: str,
) -> None:
    body = create_body(
        host_id,
        package,
        {"sqlPort": 2881, "homePath": str(tmp_path / "s1")},
        startupParameters=[{"name": "cpu_count", "value": "4"}, {"name": name, "value": "s3!"}],
    )
    response = await client.post(CLUSTERS, json=body)
    await assert_refused(response, database, "startupParameters[1].name", name)
    assert "s3!" not in response.text


@pytest.mark.parametrize("length", [COLUMN, COLUMN + 1])
async def test_a_taken_over_home_near_the_column_length_is_a_clear_answer(
    client: httpx.AsyncClient, database: Database, host_id: int, tmp_path: Path, length: int
) -> None:
    """A taken-over server stores its home and, only when given, its binary: a home that
    fits is registered, a longer one refused by name."""
    server = {"hostId": host_id, "kind": "seekdb", "sqlPort": 2881}
    server["homePath"] = long_path(tmp_path, length)
    body = {"name": "t18", "obClusterId": 7, "zones": [{"name": "zone1", "servers": [server]}]}
    response = await client.post(TAKE_OVER, json=body)
    if length > COLUMN:
        await assert_refused(response, database, "zones[0].servers[0].homePath")
    else:
        assert response.status_code == 200, response.text


@pytest.fixture
def junk_python(tmp_path: Path) -> Path:
    """A "python" that answers whatever it is asked with garbage."""
    script = tmp_path / "junk-python"
    script.write_text("#!/bin/sh\nprintf 'Python? \\033[31mno\\n{\"agent\": 7}\\n'\n")
    script.chmod(0o755)
    return script


async def test_adding_a_host_whose_python_answers_garbage_is_a_host_error(
    app: FastAPI, client: httpx.AsyncClient, database: Database, sshd: SshServer, junk_python: Path
) -> None:
    access = app.state.host_access
    access.ssh_options = dataclasses.replace(access.ssh_options, python=str(junk_python))
    credential_id = await add_key_credential(client, sshd.username, sshd.client_key)
    response = await client.post(
        HOSTS,
        json={"innerIpAddress": "127.0.0.1", "sshPort": sshd.port, "credentialId": credential_id},
    )
    body = response.json()
    assert response.status_code in (400, 500), body
    assert body["error"]["code"] == "CMP07002", body
    assert "Python?" in body["error"]["message"], body
    assert "\x1b" not in body["error"]["message"], body
    async with database.transaction() as session:
        assert list(await session.scalars(select(Host))) == []


@pytest.mark.parametrize(
    "answer",
    ["Python? \\033[31mno", '{"agent": 7}', '{"agent": "x"}', "[1, 2]", '"hello"'],
)
async def test_an_agent_whose_python_answers_garbage_is_a_host_error(
    tmp_path: Path, answer: str
) -> None:
    script = tmp_path / "junk-python"
    script.write_text(f"#!/bin/sh\nprintf '{answer}\\n'\n")
    script.chmod(0o755)
    executor = LocalExecutor(python=str(script))
    try:
        with pytest.raises(HostError) as raised:
            await executor.agent.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    finally:
        await executor.close()
    assert "\x1b" not in raised.value.message
