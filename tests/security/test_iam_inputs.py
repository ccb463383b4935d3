"""Names, Basic credentials and signed Hosts are read strictly (issue points 3, 4 and 6).

Before: `"admin\\n"` logged in and was audited as admin, and a user or role named `"x\\n"`
could be created (`$` matches before a trailing newline); a Basic header with a byte over
0x7f was a 500 with no audit row; and an AK/SK signature was accepted whatever Host it
signed, so a request signed for another server could be replayed here."""

from __future__ import annotations

import base64

import httpx
import pytest
from fastapi import FastAPI

from obpilot.db.engine import Database
from tests.support.iam import ADMIN_PASSWORD, USER_PASSWORD, add_user
from tests.support.ocp_client import OcpAccessKeyAuth

ME = "/api/v2/iam/users/me"
USERS = "/api/v2/iam/users"
ROLES = "/api/v2/iam/roles"


def refusal(response: httpx.Response, status: int, code: str) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["successful"] is False
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


# ---- a trailing newline is not the same name ------------------------------------------


SPELLINGS = ["admin\n", "admin\r\n", "ADMIN", "admin "]


@pytest.mark.parametrize("name", SPELLINGS)
async def test_another_spelling_of_admin_is_refused(
    any_client: httpx.AsyncClient, name: str
) -> None:
    """On every dialect: MySQL-family collations compare names ignoring case and trailing
    spaces, the lookup must not."""
    token = base64.b64encode(f"{name}:{ADMIN_PASSWORD}".encode()).decode()
    basic = await any_client.get(ME, headers={"Authorization": f"Basic {token}"}, auth=None)
    refusal(basic, 401, "IAM10004")
    login = await any_client.post(
        "/api/v2/iam/login", json={"username": name, "password": ADMIN_PASSWORD}, auth=None
    )
    refusal(login, 401, "IAM10004")
    assert "set-cookie" not in login.headers


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"username": "xy\n", "password": USER_PASSWORD}, "username"),
        ({"username": "admin\n", "password": USER_PASSWORD}, "username"),
        ({"username": "xy", "password": USER_PASSWORD, "email": "a@b.co\n"}, "e-mail"),
        ({"username": "xy", "password": USER_PASSWORD, "roles": ["ADMIN\n"]}, "role"),
    ],
)
async def test_a_user_name_email_or_role_with_a_trailing_newline_is_refused(
    client: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    assert fragment in refusal(await client.post(USERS, json=body), 400, "COM10001")
    listed = (await client.get(USERS)).json()["data"]["contents"]
    assert [user["username"] for user in listed] == ["admin"]


async def test_a_role_named_with_a_trailing_newline_is_refused(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "XY\n", "permissions": ["CLUSTER:1:READ"]}
    assert "role name" in refusal(await client.post(ROLES, json=body), 400, "COM10001")
    listed = (await client.get(ROLES, params={"builtin": "false"})).json()["data"]
    assert listed["contents"] == []


# ---- Basic bytes that are not ASCII ----------------------------------------------------


@pytest.mark.parametrize("raw", [b"Basic \xff\xfe", b"Basic YWRtaW46\xe9"])
async def test_a_basic_header_with_a_non_ascii_byte_is_a_401_and_audited(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.get(ME, headers={b"Authorization": raw}, auth=None)
    message = refusal(response, 401, "IAM10000")
    assert "Malformed Basic credentials" in message
    events = (await client.get("/api/v2/iam/auditEvents", params={"result": "FAILURE"})).json()
    by_trace = {event["traceId"]: event for event in events["data"]["contents"]}
    event = by_trace[response.json()["traceId"]]
    assert (event["status"], event["errorCode"]) == (401, "IAM10000")


# ---- the signed Host must be this server -----------------------------------------------


async def access_key(client: httpx.AsyncClient, database: Database) -> OcpAccessKeyAuth:
    await add_user(database, "ops", ["CLUSTER_VIEWER"])
    body = (await client.post("/api/v2/iam/accessKeys", auth=("ops", USER_PASSWORD))).json()
    return OcpAccessKeyAuth(body["data"]["accessKeyId"], body["data"]["accessKeySecret"])


def signed_for(app: FastAPI, base_url: str, auth: OcpAccessKeyAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, auth=auth)


@pytest.mark.parametrize(
    "base_url", ["http://test-node:8080", "http://TEST-Node:8080", "http://127.0.0.1:8080"]
)
async def test_a_signature_for_this_server_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, database: Database, base_url: str
) -> None:
    """The advertised address and the bound one (the test app's settings), in any case."""
    async with signed_for(app, base_url, await access_key(client, database)) as signed:
        response = await signed.get(ME)
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "base_url",
    [
        "http://testserver",
        "http://test-node",
        "http://test-node:8081",
        "http://ocp.example.com:8080",
        "http://127.0.0.1",
    ],
)
async def test_a_signature_for_another_host_is_refused(
    app: FastAPI, client: httpx.AsyncClient, database: Database, base_url: str
) -> None:
    async with signed_for(app, base_url, await access_key(client, database)) as signed:
        response = await signed.get(ME)
    message = refusal(response, 401, "IAM10000")
    host = base_url.removeprefix("http://")
    assert message == (
        f"AK/SK signature refused: the signed Host {host} is not this server "
        "(expected one of 127.0.0.1:8080, test-node:8080)"
    )
