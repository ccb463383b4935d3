"""AK/SK signatures end to end: a real uvicorn server on 127.0.0.1 and a real HTTP client that
signs as the OCP documentation says (tests/support/ocp_client.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from obpilot.app import create_app
from obpilot.db.engine import Database
from obpilot.settings import Settings
from tests.support.databases import free_port
from tests.support.iam import ADMIN_PASSWORD, USER_PASSWORD, add_user
from tests.support.inventory import add_cluster, add_local_host
from tests.support.ocp_client import OcpAccessKeyAuth, string_to_sign


@pytest.fixture
async def live_url(database: Database, tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    # Bound to the address the clients sign as Host, which the server checks.
    settings = Settings(
        home=tmp_path,
        metadb_url=database.url.render_as_string(hide_password=False),
        admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, run_migrations=False),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def key(live_url: str, database: Database) -> tuple[str, str]:
    """An AccessKey pair of a CLUSTER_MANAGER user, made through the API."""
    await add_user(database, "operator", ["CLUSTER_MANAGER"])
    async with httpx.AsyncClient(base_url=live_url, auth=("operator", USER_PASSWORD)) as client:
        body = (await client.post("/api/v2/iam/accessKeys")).json()
    assert body["successful"], body
    return body["data"]["accessKeyId"], body["data"]["accessKeySecret"]


def signed(live_url: str, auth: httpx.Auth) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live_url, auth=auth)


def refused(response: httpx.Response, *fragments: str) -> str:
    body = response.json()
    assert response.status_code == 401, body
    assert body["error"]["code"] == "IAM10000"
    message: str = body["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    return message


def with_body(content: bytes) -> Callable[[httpx.Request], httpx.Request]:
    def change(request: httpx.Request) -> httpx.Request:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        return httpx.Request(request.method, request.url, headers=headers, content=content)

    return change


def with_url(url: str) -> Callable[[httpx.Request], httpx.Request]:
    def change(request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            request.method, httpx.URL(url), headers=request.headers, content=request.content
        )

    return change


def with_header(name: str, value: str) -> Callable[[httpx.Request], httpx.Request]:
    def change(request: httpx.Request) -> httpx.Request:
        request.headers[name] = value
        return request

    return change


class TestAccepted:
    async def test_get_with_repeated_and_encoded_query(
        self, live_url: str, key: tuple[str, str]
    ) -> None:
        params = [
            ("status", "RUNNING"),
            ("name", "a b/c~d*é+%"),
            ("status", "STOPPED"),
            ("size", "5"),
            ("sort", "name,desc"),
        ]
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            response = await client.get("/api/v2/ob/clusters", params=params)
        assert response.status_code == 200, response.json()
        assert response.json()["data"]["page"]["size"] == 5

    async def test_post_with_body_and_x_ocp_headers(
        self, live_url: str, key: tuple[str, str]
    ) -> None:
        headers = {"X-OCP-Request-Id": "r-1", "x-ocp-client": "sdk/1.0", "X-Other": "unsigned"}
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            response = await client.post(
                "/api/v2/compute/hosts",
                json={"name": "h1", "innerIpAddress": "127.0.0.1", "kind": "LOCAL"},
                headers=headers,
            )
            listed = await client.get("/api/v2/compute/hosts")
        assert response.status_code == 200, response.json()
        assert listed.json()["data"]["contents"][0]["name"] == "h1"

    async def test_post_without_a_body(
        self, live_url: str, key: tuple[str, str], database: Database
    ) -> None:
        """The gate reads the (empty) body to check the signature and hands it on: the
        route gets it instead of waiting for a body that never comes."""
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), name="bodiless")
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            response = await asyncio.wait_for(
                client.post(f"/api/v2/ob/clusters/{cluster.id}/stop"), 10
            )
        assert response.status_code == 200, response.json()
        assert response.json()["data"]["name"] == "Stop OB cluster"

    async def test_content_type_with_charset_and_a_path_id(
        self, live_url: str, key: tuple[str, str], database: Database
    ) -> None:
        async with database.transaction(write=True) as session:
            cluster = await add_cluster(session, await add_local_host(session), zones=1)
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            response = await client.get(
                f"/api/v2/ob/clusters/{cluster.id}/zones",
                headers={"Content-Type": "application/json;charset=utf-8"},
            )
        assert response.status_code == 200, response.json()

    async def test_the_key_acts_as_its_user(self, live_url: str, key: tuple[str, str]) -> None:
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            me = (await client.get("/api/v2/iam/users/me")).json()["data"]
            forbidden = await client.get("/api/v2/iam/auditEvents")
        assert me["username"] == "operator"
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "IAM11000"

    async def test_date_just_inside_the_window(self, live_url: str, key: tuple[str, str]) -> None:
        date = datetime.now(UTC) - timedelta(minutes=14)
        async with signed(live_url, OcpAccessKeyAuth(*key, date=date)) as client:
            assert (await client.get("/api/v2/iam/users/me")).status_code == 200


class TestRefused:
    async def test_wrong_secret(self, live_url: str, key: tuple[str, str]) -> None:
        access_key_id, secret = key
        auth = OcpAccessKeyAuth(access_key_id, secret + "x")
        async with signed(live_url, auth) as client:
            response = await client.get("/api/v2/iam/users/me")
        message = refused(response, "signature does not match", "The server signed")
        assert "GET\n\n\n" in message.replace("\\n", "\n")

    async def test_stale_date(self, live_url: str, key: tuple[str, str]) -> None:
        date = datetime.now(UTC) - timedelta(minutes=16)
        async with signed(live_url, OcpAccessKeyAuth(*key, date=date)) as client:
            refused(await client.get("/api/v2/iam/users/me"), "15 minutes")

    async def test_future_date(self, live_url: str, key: tuple[str, str]) -> None:
        date = datetime.now(UTC) + timedelta(minutes=16)
        async with signed(live_url, OcpAccessKeyAuth(*key, date=date)) as client:
            refused(await client.get("/api/v2/iam/users/me"), "15 minutes")

    async def test_missing_date(self, live_url: str, key: tuple[str, str]) -> None:
        async with signed(live_url, OcpAccessKeyAuth(*key, send_date=False)) as client:
            refused(await client.get("/api/v2/iam/users/me"), "Date header is missing")

    async def test_malformed_date(self, live_url: str, key: tuple[str, str]) -> None:
        async with signed(live_url, OcpAccessKeyAuth(*key, date="yesterday")) as client:
            refused(await client.get("/api/v2/iam/users/me"), "RFC 1123")

    async def test_changed_body(self, live_url: str, key: tuple[str, str]) -> None:
        auth = OcpAccessKeyAuth(*key, tamper=with_body(b'{"name": "h2", "innerIpAddress": "::1"}'))
        async with signed(live_url, auth) as client:
            response = await client.post(
                "/api/v2/compute/hosts", json={"name": "h1", "innerIpAddress": "127.0.0.1"}
            )
            refused(response, "signature does not match")
        await self._no_hosts(live_url, key)

    async def test_body_not_matching_content_md5(self, live_url: str, key: tuple[str, str]) -> None:
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            response = await client.post(
                "/api/v2/compute/hosts",
                json={"name": "h1", "innerIpAddress": "127.0.0.1"},
                headers={"Content-MD5": "0" * 32},
            )
        refused(response, "does not match its Content-MD5")

    async def test_changed_query(self, live_url: str, key: tuple[str, str]) -> None:
        auth = OcpAccessKeyAuth(*key, tamper=with_url(f"{live_url}/api/v2/ob/clusters?size=7"))
        async with signed(live_url, auth) as client:
            response = await client.get("/api/v2/ob/clusters", params={"size": "5"})
        message = refused(response, "signature does not match")
        assert "/api/v2/ob/clusters?size=7" in message

    async def test_changed_x_ocp_header(self, live_url: str, key: tuple[str, str]) -> None:
        auth = OcpAccessKeyAuth(*key, tamper=with_header("X-OCP-Request-Id", "r-2"))
        async with signed(live_url, auth) as client:
            response = await client.get("/api/v2/iam/users/me", headers={"X-OCP-Request-Id": "r-1"})
        refused(response, "signature does not match", "x-ocp-request-id:r-2")

    async def test_added_x_ocp_header(self, live_url: str, key: tuple[str, str]) -> None:
        auth = OcpAccessKeyAuth(*key, tamper=with_header("x-ocp-extra", "1"))
        async with signed(live_url, auth) as client:
            refused(await client.get("/api/v2/iam/users/me"), "signature does not match")

    async def test_changed_method(self, live_url: str, key: tuple[str, str]) -> None:
        def to_delete(request: httpx.Request) -> httpx.Request:
            return httpx.Request("DELETE", request.url, headers=request.headers)

        auth = OcpAccessKeyAuth(*key, tamper=to_delete)
        async with signed(live_url, auth) as client:
            refused(await client.get("/api/v2/compute/hosts/1"), "signature does not match")

    async def test_unknown_access_key(self, live_url: str) -> None:
        auth = OcpAccessKeyAuth("AKNOSUCHKEY", "secret")
        async with signed(live_url, auth) as client:
            refused(await client.get("/api/v2/iam/users/me"), "Unknown AccessKeyId AKNOSUCHKEY")

    async def test_other_algorithm(self, live_url: str, key: tuple[str, str]) -> None:
        auth = OcpAccessKeyAuth(*key, algorithm="OCP-ACCESS-KEY-HMACSHA256")
        async with signed(live_url, auth) as client:
            refused(await client.get("/api/v2/iam/users/me"), "Unsupported Authorization scheme")

    async def test_malformed_authorization(self, live_url: str) -> None:
        headers = {"Authorization": "OCP-ACCESS-KEY-HMACSHA1 no-colon", "Date": "x"}
        async with httpx.AsyncClient(base_url=live_url) as client:
            refused(await client.get("/api/v2/iam/users/me", headers=headers), "Malformed")

    async def test_deleted_key(self, live_url: str, key: tuple[str, str]) -> None:
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            deleted = await client.delete(f"/api/v2/iam/accessKeys/{key[0]}")
            assert deleted.status_code == 200, deleted.json()
            refused(await client.get("/api/v2/iam/users/me"), "Unknown AccessKeyId")

    async def test_disabled_user(
        self, live_url: str, key: tuple[str, str], database: Database
    ) -> None:
        async with httpx.AsyncClient(base_url=live_url, auth=("admin", ADMIN_PASSWORD)) as admin:
            users = (await admin.get("/api/v2/iam/users")).json()["data"]["contents"]
            operator = next(u for u in users if u["username"] == "operator")
            await admin.put(f"/api/v2/iam/users/{operator['id']}", json={"enabled": False})
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            response = await client.get("/api/v2/iam/users/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "IAM10001"

    async def test_refusals_never_show_the_expected_signature(
        self, live_url: str, key: tuple[str, str]
    ) -> None:
        access_key_id, secret = key
        async with signed(live_url, OcpAccessKeyAuth(access_key_id, secret + "x")) as client:
            response = await client.get("/api/v2/iam/users/me", params={"a": "1"})
        digest = hmac.new(
            secret.encode(), string_to_sign(response.request).encode(), hashlib.sha1
        ).digest()
        expected = base64.b64encode(digest).decode()
        refused(response, "signature does not match")
        assert expected not in response.text
        assert secret not in response.text

    @staticmethod
    async def _no_hosts(live_url: str, key: tuple[str, str]) -> None:
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            listed = (await client.get("/api/v2/compute/hosts")).json()
        assert listed["data"]["page"]["totalElements"] == 0


class TestKeyManagement:
    async def test_secret_is_shown_once_and_stored_encrypted(
        self, live_url: str, key: tuple[str, str], database: Database
    ) -> None:
        access_key_id, secret = key
        async with httpx.AsyncClient(base_url=live_url, auth=("operator", USER_PASSWORD)) as c:
            listed = await c.get("/api/v2/iam/accessKeys")
        assert [k["accessKeyId"] for k in listed.json()["data"]["contents"]] == [access_key_id]
        assert secret not in listed.text
        assert "accessKeySecret" not in listed.text
        async with database.transaction() as session:
            from sqlalchemy import select

            from obpilot.iam.models import AccessKey

            stored = (await session.scalars(select(AccessKey))).one()
        assert secret not in stored.secret_encrypted

    async def test_keys_are_per_user(
        self, live_url: str, key: tuple[str, str], database: Database
    ) -> None:
        await add_user(database, "other", ["CLUSTER_VIEWER"])
        async with httpx.AsyncClient(base_url=live_url, auth=("other", USER_PASSWORD)) as c:
            assert (await c.get("/api/v2/iam/accessKeys")).json()["data"]["contents"] == []
            response = await c.delete(f"/api/v2/iam/accessKeys/{key[0]}")
        assert response.status_code == 404
        async with signed(live_url, OcpAccessKeyAuth(*key)) as client:
            assert (await client.get("/api/v2/iam/users/me")).status_code == 200

    async def test_at_most_five_keys(self, live_url: str, key: tuple[str, str]) -> None:
        async with httpx.AsyncClient(base_url=live_url, auth=("operator", USER_PASSWORD)) as c:
            statuses = [(await c.post("/api/v2/iam/accessKeys")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 409]


def test_string_to_sign_matches_the_documented_layout() -> None:
    request = httpx.Request(
        "POST",
        "http://ocp.example:8080/api/v2/x?b=2&a=1&b=1&c=%7E%20",
        headers={"Date": "Tue, 17 Jan 2023 03:36:01 GMT", "Content-Type": "application/json"},
        content=b"{}",
    )
    assert string_to_sign(request) == (
        "POST\n99914B932BD37A50B983C5E7C90AE93B\napplication/json\n"
        "Tue, 17 Jan 2023 03:36:01 GMT\nocp.example:8080\n\n/api/v2/x?a=1&b=1,2&c=~%20"
    )
