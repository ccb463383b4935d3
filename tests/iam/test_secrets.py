"""Passwords, AccessKey secrets and session tokens never appear in a response (except the
one answer that creates an AccessKey), in a log line, or in clear in the metadb."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from obpilot.db.engine import Database
from obpilot.iam.models import AccessKey, AuditEvent, ConsoleSession, User
from tests.support.iam import json_logs
from tests.support.ocp_client import OcpAccessKeyAuth

FIRST = "First-Secret-Pw1"
SECOND = "Second-Secret-Pw2"
WRONG = "Wrong-Secret-Pw3"
TOO_LONG = "Long-Secret-" + "x" * 200
SIGNED_HOST = "http://test-node:8080"  # the test app's advertised address


async def test_secrets_stay_secret(
    app: FastAPI, client: httpx.AsyncClient, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    responses: list[httpx.Response] = []
    with json_logs():
        responses.append(
            await client.post(
                "/api/v2/iam/users",
                json={"username": "sue", "password": FIRST, "roles": ["CLUSTER_MANAGER"]},
            )
        )
        user_id = responses[-1].json()["data"]["id"]
        responses.append(
            await client.post("/api/v2/iam/users", json={"username": "x1", "password": TOO_LONG})
        )
        responses.append(await client.get("/api/v2/iam/users/me", auth=("sue", WRONG)))
        responses.append(await client.get("/api/v2/iam/users/me", auth=("sue", FIRST)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as console:
            login = await console.post(
                "/api/v2/iam/login", data={"username": "sue", "password": FIRST}
            )
            session_token = console.cookies["obpilot_session"]
            csrf_token = console.cookies["obpilot_csrf"]
            created = await console.post(
                "/api/v2/iam/accessKeys", headers={"X-CSRF-Token": csrf_token}
            )
            responses.append(await console.get("/api/v2/iam/accessKeys"))
            responses.append(
                await console.post(
                    "/api/v2/iam/users/me/changePassword",
                    json={"currentPassword": FIRST, "newPassword": SECOND},
                    headers={"X-CSRF-Token": csrf_token},
                )
            )
        access_key_id = created.json()["data"]["accessKeyId"]
        secret = created.json()["data"]["accessKeySecret"]
        async with httpx.AsyncClient(
            transport=transport,
            base_url=SIGNED_HOST,
            auth=OcpAccessKeyAuth(access_key_id, secret),
        ) as signed:
            responses.append(await signed.get("/api/v2/ob/clusters", params={"a": "1"}))
            responses.append(
                await signed.post("/api/v2/compute/hosts", json={"innerIpAddress": "x"})
            )
        async with httpx.AsyncClient(
            transport=transport,
            base_url=SIGNED_HOST,
            auth=OcpAccessKeyAuth(access_key_id, secret + "wrong"),
        ) as badly_signed:
            responses.append(await badly_signed.get("/api/v2/iam/users/me"))
        responses.append(
            await client.post(
                f"/api/v2/iam/users/{user_id}/changePassword", json={"newPassword": FIRST}
            )
        )
        responses.append(await client.get("/api/v2/iam/auditEvents", params={"size": 100}))
        responses.append(await client.get(f"/api/v2/iam/users/{user_id}"))
    logs = capsys.readouterr()

    assert login.status_code == 200
    assert created.status_code == 200
    assert [r.status_code for r in responses] == [
        200,
        400,
        401,
        200,
        200,
        200,
        200,
        400,
        401,
        200,
        200,
        200,
    ]
    secrets = [FIRST, SECOND, WRONG, TOO_LONG, secret, session_token, csrf_token]
    log_lines = [line for line in (logs.out + logs.err).splitlines() if line.startswith("{")]
    assert log_lines, "the log captured nothing"
    for line in log_lines:
        json.loads(line)
        for value in secrets:
            assert value not in line, line
    for response in [*responses, login]:
        for value in secrets:
            assert value not in response.text, response.text
    assert secret in created.text  # the single answer that carries it

    async with database.transaction() as session:
        stored = [
            *(u.password_hash for u in await session.scalars(select(User))),
            *(k.secret_encrypted for k in await session.scalars(select(AccessKey))),
            *(s.token_hash + s.csrf_hash for s in await session.scalars(select(ConsoleSession))),
            *(
                json.dumps([e.username, e.action, e.resource, e.error_code])
                for e in await session.scalars(select(AuditEvent))
            ),
        ]
    for value in secrets:
        assert all(value not in column for column in stored)
