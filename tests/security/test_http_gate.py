"""The request gate (api/gate.py): cross-site writes, form bodies, body limits and
authentication before a body is read, each refusal in the envelope and in the audit log;
no trailing-slash redirects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from obpilot.db.engine import Database
from obpilot.iam import service
from obpilot.iam.models import AccessKey, AuditEvent, User
from obpilot.iam.signatures import SCHEME
from tests.support.iam import ADMIN_PASSWORD, USER_PASSWORD, add_user

KEYS = "/api/v2/iam/accessKeys"
LOGIN = "/api/v2/iam/login"
ME = "/api/v2/iam/users/me"
MIB = 1024 * 1024


def refused(response: httpx.Response, status: int, code: str) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["successful"] is False
    assert body["status"] == status
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


async def access_keys(database: Database) -> list[AccessKey]:
    async with database.transaction() as session:
        return list(await session.scalars(select(AccessKey)))


async def audit_events(database: Database) -> list[AuditEvent]:
    async with database.transaction() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


class Pulled:
    """A request body of `size` bytes that is never allocated whole, counting what the
    server pulled of it."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size = size
        self.chunk = chunk
        self.bytes = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        piece = b" " * self.chunk
        while self.bytes < self.size:
            self.bytes += len(piece)
            yield piece


class TestCrossSiteWrites:
    async def test_a_foreign_origin_cannot_write_even_with_basic_credentials(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        response = await client.post(KEYS, headers={"Origin": "http://evil.example"})
        assert "evil.example" in refused(response, 403, "IAM11000")
        assert await access_keys(database) == []
        [event] = await audit_events(database)
        assert (event.status, event.error_code, event.action) == (
            403,
            "IAM11000",
            "create_access_key",
        )

    async def test_a_forged_form_post_is_refused(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        user = await add_user(database, "locked-out")
        for _ in range(5):
            await client.get(ME, auth=("locked-out", "wrong"))
        response = await client.post(
            f"/api/v2/iam/users/{user.id}/unlock",
            data={"x": "1"},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        refused(response, 403, "IAM11000")
        async with database.transaction() as session:
            assert (await session.get_one(User, user.id)).locked_until is not None

    @pytest.mark.parametrize(
        "headers",
        [
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "null"},
            {"Origin": "http://testserver:8081"},
            {"Origin": "http://testserver.evil.example"},
        ],
    )
    async def test_other_sites_are_refused(
        self, client: httpx.AsyncClient, database: Database, headers: dict[str, str]
    ) -> None:
        refused(await client.post(KEYS, headers=headers), 403, "IAM11000")
        assert await access_keys(database) == []

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Origin": "http://testserver"},
            {"Origin": "http://TestServer:80"},
            {"Origin": "https://test-node:8080"},  # the advertised address
            {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
            {"Origin": "http://testserver", "Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "same-origin"},
            {"Sec-Fetch-Site": "none"},
        ],
    )
    async def test_this_server_and_non_browsers_may_write(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.post(KEYS, headers=headers)
        assert response.status_code == 200, response.json()

    async def test_reads_from_anywhere_are_unaffected(self, client: httpx.AsyncClient) -> None:
        response = await client.get(KEYS, headers={"Origin": "http://evil.example"})
        assert response.status_code == 200, response.json()

    async def test_refused_before_authentication(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        """Wrong passwords sent cross-site are not even tried: they cannot lock anyone out."""
        await add_user(database, "target")
        for _ in range(6):
            response = await client.post(
                KEYS, auth=("target", "wrong"), headers={"Origin": "http://evil.example"}
            )
            refused(response, 403, "IAM11000")
        assert (await client.get(ME, auth=("target", USER_PASSWORD))).status_code == 200

    async def test_browsers_get_no_basic_challenge(self, client: httpx.AsyncClient) -> None:
        response = await client.get(ME, auth=None, headers={"Sec-Fetch-Site": "none"})
        refused(response, 401, "IAM10000")
        assert "www-authenticate" not in response.headers


class TestFormBodies:
    async def test_a_form_is_refused_by_every_write_but_login(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        for data in ({"name": "x"}, None):
            files = {"file": ("a.txt", b"x")} if data is None else None
            response = await client.post("/api/v2/compute/hosts", data=data, files=files)
            refused(response, 415, "COM10003")
        refused(await client.post(KEYS, data={"x": "1"}), 415, "COM10003")
        assert await access_keys(database) == []
        events = await audit_events(database)
        assert [(e.status, e.error_code) for e in events] == [(415, "COM10003")] * 3
        assert events[-1].username == "admin"  # authenticated, then refused

    async def test_login_takes_a_form(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            LOGIN, data={"username": "admin", "password": ADMIN_PASSWORD}, auth=None
        )
        assert response.status_code == 200, response.json()


class TestBodyLimits:
    async def test_an_anonymous_huge_body_is_not_read(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        body = Pulled(200 * MIB)
        response = await client.post(
            "/api/v2/compute/hosts",
            content=body,
            headers={"Content-Type": "application/json", "Content-Length": str(200 * MIB)},
            auth=None,
        )
        assert response.status_code in (401, 413), response.json()
        assert response.headers["connection"] == "close"
        assert body.bytes == 0
        [event] = await audit_events(database)
        assert event.status == response.status_code

    async def test_an_anonymous_streamed_body_is_not_read(self, client: httpx.AsyncClient) -> None:
        body = Pulled(200 * MIB)
        response = await client.post(
            "/api/v2/compute/hosts",
            content=body,
            headers={"Content-Type": "application/json"},
            auth=None,
        )
        refused(response, 401, "IAM10000")
        assert body.bytes == 0

    async def test_a_declared_length_over_the_limit_is_refused_at_once(
        self, client: httpx.AsyncClient
    ) -> None:
        body = Pulled(2 * MIB)
        response = await client.post(
            "/api/v2/compute/hosts",
            content=body,
            headers={"Content-Type": "application/json", "Content-Length": str(2 * MIB)},
        )
        assert "OBPILOT_MAX_BODY_BYTES" in refused(response, 413, "COM10413")
        assert body.bytes == 0

    async def test_an_authenticated_two_megabyte_body_is_refused(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        document = b'{"innerIpAddress": "127.0.0.1", "kind": "LOCAL", "alias": "' + (
            b"a" * 2 * MIB + b'"}'
        )
        refused(
            await client.post(
                "/api/v2/compute/hosts",
                content=document,
                headers={"Content-Type": "application/json"},
            ),
            413,
            "COM10413",
        )
        events = await audit_events(database)
        assert [(e.status, e.error_code, e.username) for e in events] == [(413, "COM10413", None)]

    async def test_a_streamed_body_is_cut_off_at_the_limit(self, client: httpx.AsyncClient) -> None:
        body = Pulled(20 * MIB)
        response = await client.post(
            "/api/v2/compute/hosts", content=body, headers={"Content-Type": "application/json"}
        )
        refused(response, 413, "COM10413")
        assert body.bytes <= MIB + body.chunk

    async def test_a_signed_request_body_is_capped_before_the_signature_is_checked(
        self, client: httpx.AsyncClient
    ) -> None:
        body = Pulled(20 * MIB)
        response = await client.post(
            "/api/v2/compute/hosts",
            content=body,
            headers={"Content-Type": "application/json", "Authorization": f"{SCHEME} AK:c2ln"},
            auth=None,
        )
        refused(response, 413, "COM10413")
        assert body.bytes <= MIB + body.chunk

    async def test_a_login_body_over_four_kilobytes_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        document = b'{"username": "admin", "password": "' + b"p" * 5000 + b'"}'
        response = await client.post(
            LOGIN, content=document, headers={"Content-Type": "application/json"}, auth=None
        )
        assert "OBPILOT_MAX_LOGIN_BODY_BYTES" in refused(response, 413, "COM10413")
        chunked = Pulled(5000, chunk=1000)
        response = await client.post(
            LOGIN, content=chunked, headers={"Content-Type": "application/json"}, auth=None
        )
        refused(response, 413, "COM10413")

    async def test_a_body_within_the_limit_is_passed_on(self, client: httpx.AsyncClient) -> None:
        body = {"innerIpAddress": "127.0.0.1", "kind": "LOCAL", "description": "d" * 200}
        response = await client.post("/api/v2/compute/hosts", json=body)
        assert response.status_code == 200, response.json()


class TestUnexpectedErrors:
    async def test_a_write_that_fails_with_500_is_audited(
        self, client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("secret internal detail")

        monkeypatch.setattr(service, "create_access_key", broken)
        response = await client.post(KEYS)
        refused(response, 500, "COM10999")
        [event] = await audit_events(database)
        assert (event.status, event.error_code, event.action) == (
            500,
            "COM10999",
            "create_access_key",
        )
        assert event.username == "admin"
        assert event.trace_id == response.json()["traceId"]


class TestNoRedirects:
    @pytest.mark.parametrize("path", ["/api/v2/ob/clusters/", "/api/v2/iam/users/me/"])
    async def test_a_trailing_slash_is_a_404_not_a_redirect(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path, headers={"Host": "evil.example"})
        refused(response, 404, "COM10002")
        assert "location" not in response.headers

    async def test_anonymous_callers_get_401_not_a_redirect(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/api/v2/ob/clusters/", auth=None)
        refused(response, 401, "IAM10000")
        assert "location" not in response.headers
