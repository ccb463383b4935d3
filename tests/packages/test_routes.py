"""Software packages through the API: streamed uploads read for what they are, the list,
and deletes refused while a server uses the package."""

from __future__ import annotations

import asyncio
import hashlib
import random
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from obpilot.app import create_app
from obpilot.cli.client import AccessKeyAuth
from obpilot.db.engine import Database
from obpilot.inventory.models import Server
from obpilot.packages.models import SoftwarePackage
from obpilot.packages.staging import staged_dir, staged_files
from obpilot.settings import Settings
from tests.conftest import UserClientFactory
from tests.packages.conftest import OB_RELEASE, oceanbase_libs_rpm, oceanbase_rpm, seekdb_rpm
from tests.support.iam import ADMIN_PASSWORD, client_for
from tests.support.inventory import add_cluster, add_local_host
from tests.support.ocp_client import OcpAccessKeyAuth
from tests.support.rpm import Member, executable, rpm

BASE = "/api/v2/software-packages"
MiB = 1024 * 1024
#: The address a signature names must be this server's.
SIGNED_URL = "http://127.0.0.1:8080" + BASE


async def upload(client: httpx.AsyncClient, name: str, data: bytes) -> httpx.Response:
    return await client.post(BASE, files={"file": (name, data, "application/octet-stream")})


async def package_rows(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(SoftwarePackage)) or 0)


def kept_files(home: Path) -> list[str]:
    directory = home / "packages"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_the_real_wheel_is_streamed_to_disk_and_read(
    client: httpx.AsyncClient, database: Database, seekdb_wheel: Path, tmp_path: Path
) -> None:
    data = await asyncio.to_thread(seekdb_wheel.read_bytes)
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    with seekdb_wheel.open("rb") as file:
        created = await client.post(BASE, files={"file": (seekdb_wheel.name, file)})
    assert created.status_code == 200, created.text
    item = created.json()["data"]
    assert item["fileName"] == seekdb_wheel.name
    assert (item["sha1"], item["size"]) == (sha1, len(data))
    assert (item["name"], item["type"], item["extension"]) == (
        "pylibseekdb",
        "OB_SERVER_INSTALL_PACKAGE",
        "whl",
    )
    assert seekdb_wheel.name.startswith(f"pylibseekdb-{item['version']}-")
    assert item["architecture"] == "x86_64"
    assert item["operatingSystem"].startswith("manylinux")
    assert item["deletable"] is True
    assert item["downloadUrl"] is None
    assert kept_files(tmp_path) == [f"{sha1}.whl"]
    assert (tmp_path / "packages" / f"{sha1}.whl").read_bytes() == data
    got = await client.get(f"{BASE}/{item['id']}")
    assert got.json()["data"] == item


async def test_rpms_are_read_from_their_headers(client: httpx.AsyncClient) -> None:
    for name, data in (
        ("oceanbase-ce-4.2.1.0-100000102023092807.el7.x86_64.rpm", oceanbase_rpm()),
        ("oceanbase-ce-libs-4.2.1.0-100000102023092807.el7.x86_64.rpm", oceanbase_libs_rpm()),
        ("seekdb-1.0.0.0-100000012025112711.el8.aarch64.rpm", seekdb_rpm()),
    ):
        created = await upload(client, name, data)
        assert created.status_code == 200, created.text
    listed = (await client.get(BASE, params={"sort": "id"})).json()["data"]["contents"]
    assert [(p["name"], p["version"], p["buildNumber"], p["operatingSystem"]) for p in listed] == [
        ("oceanbase-ce", "4.2.1.0", OB_RELEASE, "el7"),
        ("oceanbase-ce-libs", "4.2.1.0", OB_RELEASE, "el7"),
        ("seekdb", "1.0.0.0", "100000012025112711.el8", "el8"),
    ]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.txt", b"not a package\n" * 1000, "neither a pylibseekdb wheel nor an RPM"),
        ("fake.whl", b"PK\x03\x04" + b"\0" * 4000, "cannot be read"),
        ("../../evil.rpm", seekdb_rpm(), "not a plain file name"),
    ],
)
async def test_a_file_that_is_no_package_is_refused_and_not_kept(
    client: httpx.AsyncClient,
    database: Database,
    tmp_path: Path,
    name: str,
    data: bytes,
    reason: str,
) -> None:
    refused = await upload(client, name, data)
    assert refused.status_code == 400, refused.text
    assert reason in refused.json()["error"]["message"]
    assert kept_files(tmp_path) == []
    assert await package_rows(database) == 0


async def test_a_zip_that_is_not_a_wheel_is_refused(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("README.md", "hello")
    refused = await upload(client, "other.whl", other.read_bytes())
    assert refused.status_code == 400
    assert "not a Python wheel" in refused.json()["error"]["message"]
    assert kept_files(tmp_path) == []
    assert await package_rows(database) == 0


async def test_the_same_file_or_file_name_again_is_a_conflict(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    first = (await upload(client, "ob.rpm", oceanbase_rpm())).json()["data"]
    same_file = await upload(client, "renamed.rpm", oceanbase_rpm())
    assert same_file.status_code == 409
    assert f"software package {first['id']} (ob.rpm)" in same_file.json()["error"]["message"]
    same_name = await upload(client, "ob.rpm", oceanbase_rpm(version="4.3.0.0"))
    assert same_name.status_code == 409
    assert f"software package {first['id']}" in same_name.json()["error"]["message"]
    assert await package_rows(database) == 1
    assert kept_files(tmp_path) == [f"{first['sha1']}.rpm"]


async def test_a_request_without_a_file_is_refused(client: httpx.AsyncClient) -> None:
    no_file = await client.post(BASE, files={"other": ("x.rpm", b"data")})
    assert no_file.status_code == 400
    assert "no file in the multipart field 'file'" in no_file.json()["error"]["message"]
    as_json = await client.post(BASE, json={"file": "x"})
    assert as_json.status_code == 415


@pytest.fixture
async def small_limit_client(
    database: Database, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        home=tmp_path,
        metadb_url=database.url.render_as_string(hide_password=False),
        admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        max_package_bytes=64 * 1024,
    )
    app = create_app(settings, run_migrations=False)
    async with app.router.lifespan_context(app), client_for(app, "admin", ADMIN_PASSWORD) as client:
        yield client


async def test_an_upload_over_the_limit_is_refused_and_not_kept(
    small_limit_client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    declared = await upload(small_limit_client, "big.rpm", b"\0" * (100 * 1024))
    assert declared.status_code == 413
    assert "OBPILOT_MAX_PACKAGE_BYTES" in declared.json()["error"]["message"]

    async def undeclared() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=big.rpm\r\n\r\n"
        for _ in range(100):
            yield b"\0" * 1024
        yield b"\r\n--b--\r\n"

    streamed = await small_limit_client.post(
        BASE, content=undeclared(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert streamed.status_code == 413
    assert kept_files(tmp_path) == []
    assert await package_rows(database) == 0
    small = await upload(small_limit_client, "seekdb.rpm", seekdb_rpm())
    assert small.status_code == 200, small.text


async def test_an_upload_is_never_held_in_memory(client: httpx.AsyncClient, tmp_path: Path) -> None:
    size, chunk = 200 * MiB, b"\0" * MiB

    async def body() -> AsyncIterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=zeros.bin\r\n\r\n"
        for _ in range(size // len(chunk)):
            yield chunk
        yield b"\r\n--b--\r\n"

    tracemalloc.start()
    try:
        refused = await client.post(
            BASE, content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.status_code == 400  # zeros are no package: read from disk, then removed
    assert peak < 32 * MiB, f"peak {peak / MiB:.0f} MiB for a {size / MiB:.0f} MiB upload"
    assert kept_files(tmp_path) == []


async def test_the_list_filters(client: httpx.AsyncClient) -> None:
    await upload(client, "ob-4.2.rpm", oceanbase_rpm())
    await upload(client, "ob-4.3.rpm", oceanbase_rpm(version="4.3.0.0"))
    await upload(client, "libs-4.2.rpm", oceanbase_libs_rpm())
    await upload(client, "seekdb.rpm", seekdb_rpm())

    async def names(**params: object) -> list[str]:
        response = await client.get(BASE, params={**params, "sort": "fileName"})
        assert response.status_code == 200, response.text
        return [p["fileName"] for p in response.json()["data"]["contents"]]

    assert await names() == ["libs-4.2.rpm", "ob-4.2.rpm", "ob-4.3.rpm", "seekdb.rpm"]
    assert await names(keyword="OB-4") == ["ob-4.2.rpm", "ob-4.3.rpm"]
    assert await names(keyword="libs") == ["libs-4.2.rpm"]  # the name holds it too
    assert await names(version=["4.3.0.0", "1.0.0.0"]) == ["ob-4.3.rpm", "seekdb.rpm"]
    assert await names(architecture="aarch64") == ["seekdb.rpm"]
    assert await names(operatingSystem=["el8"]) == ["seekdb.rpm"]
    assert await names(type="OB_SERVER_INSTALL_PACKAGE", size=2) == ["libs-4.2.rpm", "ob-4.2.rpm"]
    assert await names(type="OB_PROXY_INSTALL_PACKAGE") == []
    missing = await client.get(f"{BASE}/999")
    assert missing.status_code == 404
    assert (await client.get(f"{BASE}/01")).status_code == 400


async def test_a_package_a_server_uses_is_not_deleted(
    app: FastAPI, client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    item = (await upload(client, "ob.rpm", oceanbase_rpm())).json()["data"]
    async with database.transaction() as session:
        cluster = await add_cluster(session, await add_local_host(session), name="ob1", zones=1)
        await session.execute(
            update(Server).where(Server.cluster_id == cluster.id).values(package_id=item["id"])
        )
        package = await session.get(SoftwarePackage, item["id"])
        assert package is not None
    staged_files(tmp_path, package)
    assert (await client.get(f"{BASE}/{item['id']}")).json()["data"]["deletable"] is False

    refused = await client.delete(f"{BASE}/{item['id']}")
    assert refused.status_code == 409
    assert "used by 1 server(s) of cluster(s) ob1" in refused.json()["error"]["message"]
    assert kept_files(tmp_path) == [f"{item['sha1']}.rpm", "staged"]

    async with database.transaction() as session:
        await session.execute(update(Server).values(package_id=None))
    deleted = await client.delete(f"{BASE}/{item['id']}")
    assert deleted.status_code == 200, deleted.text
    assert (await client.get(f"{BASE}/{item['id']}")).status_code == 404
    assert not (tmp_path / "packages" / f"{item['sha1']}.rpm").exists()
    assert not staged_dir(tmp_path, item["sha1"]).exists()


async def test_package_permissions(client_as: UserClientFactory) -> None:
    viewer = await client_as("PACKAGE_VIEWER")
    assert (await viewer.get(BASE)).status_code == 200
    assert (await upload(viewer, "seekdb.rpm", seekdb_rpm())).status_code == 403
    manager = await client_as("HOST_MANAGER")
    created = await upload(manager, "seekdb.rpm", seekdb_rpm())
    assert created.status_code == 200, created.text
    assert (await viewer.delete(f"{BASE}/{created.json()['data']['id']}")).status_code == 403
    profile_only = await upload(await client_as("PROFILE"), "x.rpm", seekdb_rpm())
    assert profile_only.status_code == 403


async def test_a_signed_upload_streams_and_its_body_must_match_its_declared_md5(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    """Larger than the ordinary body limit, so the gate does not read it whole: the
    signature covers the declared Content-MD5, and the body is checked against it as it
    streams in."""
    key = (await client.post("/api/v2/iam/accessKeys")).json()["data"]
    padding = Member("./home/admin/oceanbase/etc/padding", random.randbytes(3 * MiB))
    observer = executable("./home/admin/oceanbase/bin/observer", b"\x7fELF observer")
    data = rpm("oceanbase-ce", "4.2.1.0", OB_RELEASE, [observer, padding], compressor="gzip")
    boundary = "obpilot-test-boundary"
    name = "oceanbase-ce-4.2.1.0-100000102023092807.el7.x86_64.rpm"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def signed(md5: str) -> AccessKeyAuth:
        return AccessKeyAuth(key["accessKeyId"], key["accessKeySecret"], body_md5=md5)

    other = hashlib.md5(body + b"!", usedforsecurity=False).hexdigest().upper()
    refused = await client.post(SIGNED_URL, content=body, headers=headers, auth=signed(other))
    assert refused.status_code == 401, refused.text
    assert "does not match its Content-MD5" in refused.json()["error"]["message"]
    assert await package_rows(database) == 0
    assert kept_files(tmp_path) == []

    unsigned_md5 = await client.post(
        SIGNED_URL,
        content=body,
        headers=headers,
        auth=OcpAccessKeyAuth(key["accessKeyId"], key["accessKeySecret"]),
    )
    assert unsigned_md5.status_code == 401  # a streamed upload must declare its MD5
    assert "Content-MD5" in unsigned_md5.json()["error"]["message"]

    right = hashlib.md5(body, usedforsecurity=False).hexdigest().upper()
    created = await client.post(SIGNED_URL, content=body, headers=headers, auth=signed(right))
    assert created.status_code == 200, created.text
    assert created.json()["data"]["size"] == len(data)
