"""Managing users needs every permission of the user managed (issue points 1 and 5).

Before, a USER_MANAGER (`USER:*:*`) reset admin's password, then logged in as admin; it also
disabled, deleted or unlocked ADMIN and CLUSTER_MANAGER users. A password reset left the
user's access keys working, and nobody could list or revoke another user's keys."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, select, text, update

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.iam.models import AccessKey, ConsoleSession, User, UserRole
from tests.conftest import UserClientFactory
from tests.support.iam import ADMIN_PASSWORD, USER_PASSWORD, add_user, client_for
from tests.support.ocp_client import OcpAccessKeyAuth

USERS = "/api/v2/iam/users"
ME = f"{USERS}/me"
NEW_PASSWORD = "Taken-Over-Pw1"
SIGNED_BASE = "http://test-node:8080"  # the test app's advertised address, signed as Host

Action = Callable[[httpx.AsyncClient, int, str], Awaitable[httpx.Response]]


async def reset_password(client: httpx.AsyncClient, user_id: int, _key: str) -> httpx.Response:
    return await client.post(
        f"{USERS}/{user_id}/changePassword", json={"newPassword": NEW_PASSWORD}
    )


async def disable(client: httpx.AsyncClient, user_id: int, _key: str) -> httpx.Response:
    return await client.put(f"{USERS}/{user_id}", json={"enabled": False})


async def change_email(client: httpx.AsyncClient, user_id: int, _key: str) -> httpx.Response:
    return await client.put(f"{USERS}/{user_id}", json={"email": "attacker@example.com"})


async def delete(client: httpx.AsyncClient, user_id: int, _key: str) -> httpx.Response:
    return await client.delete(f"{USERS}/{user_id}")


async def unlock(client: httpx.AsyncClient, user_id: int, _key: str) -> httpx.Response:
    return await client.post(f"{USERS}/{user_id}/unlock")


async def take_roles(client: httpx.AsyncClient, user_id: int, _key: str) -> httpx.Response:
    return await client.put(f"{USERS}/{user_id}/roles", json={"roles": []})


async def revoke_key(client: httpx.AsyncClient, user_id: int, key: str) -> httpx.Response:
    return await client.delete(f"{USERS}/{user_id}/accessKeys/{key}")


ACTIONS = [reset_password, disable, change_email, delete, unlock, take_roles, revoke_key]


async def make_key(app: FastAPI, username: str, password: str = USER_PASSWORD) -> tuple[str, str]:
    async with client_for(app, username, password) as owner:
        body = (await owner.post("/api/v2/iam/accessKeys")).json()
    assert body["successful"], body
    return body["data"]["accessKeyId"], body["data"]["accessKeySecret"]


async def lock(database: Database, user_id: int) -> None:
    async with database.transaction(write=True) as session:
        await session.execute(
            update(User).where(User.id == user_id).values(locked_until=utcnow().replace(year=2999))
        )


async def snapshot(database: Database, user_id: int) -> tuple[object, ...]:
    """Everything a refused action could have changed about a user."""
    async with database.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None
        roles = await session.scalars(
            select(UserRole.role_id).where(UserRole.user_id == user_id).order_by(UserRole.role_id)
        )
        keys = await session.scalars(
            select(AccessKey.access_key_id).where(AccessKey.user_id == user_id)
        )
        return (
            user.password_hash,
            user.enabled,
            user.email,
            user.locked_until,
            user.update_time,
            list(roles),
            list(keys),
        )


def refused(response: httpx.Response, *missing: str) -> str:
    body = response.json()
    assert response.status_code == 403, body
    assert body["error"]["code"] == "IAM11000"
    message: str = body["error"]["message"]
    assert "You cannot manage user" in message
    for expression in missing:
        assert expression in message, message
    return message


@pytest.mark.parametrize("action", ACTIONS, ids=lambda action: action.__name__)
@pytest.mark.parametrize(
    ("role", "missing"),
    [("ADMIN", ["**"]), ("CLUSTER_MANAGER", ["CLUSTER:*:*", "HOST:*:*", "TASK:*:*"])],
)
async def test_a_user_manager_cannot_manage_a_more_powerful_user(
    app: FastAPI,
    client: httpx.AsyncClient,
    client_as: UserClientFactory,
    database: Database,
    action: Action,
    role: str,
    missing: list[str],
) -> None:
    manager = await client_as("USER_MANAGER", username="usermgr")
    if role == "ADMIN":
        target_id = (await client.get(ME)).json()["data"]["id"]
        key, _ = await make_key(app, "admin", ADMIN_PASSWORD)
    else:
        target_id = (await add_user(database, "boss", [role])).id
        key, _ = await make_key(app, "boss")
    await lock(database, target_id)
    before = await snapshot(database, target_id)

    refused(await action(manager, target_id, key), *missing)

    assert await snapshot(database, target_id) == before


@pytest.mark.parametrize("action", ACTIONS, ids=lambda action: action.__name__)
async def test_a_user_manager_still_manages_users_who_hold_less(
    app: FastAPI,
    client: httpx.AsyncClient,
    client_as: UserClientFactory,
    database: Database,
    action: Action,
) -> None:
    created = await client.post(
        "/api/v2/iam/roles", json={"name": "USERS_RO", "permissions": ["USER:*:READ"]}
    )
    assert created.status_code == 200, created.json()
    manager = await client_as("USER_MANAGER", username="usermgr")
    target = await add_user(database, "clerk", ["USERS_RO"])
    key, _ = await make_key(app, "clerk")
    await lock(database, target.id)
    response = await action(manager, target.id, key)
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("action", ACTIONS, ids=lambda action: action.__name__)
async def test_admin_manages_a_cluster_manager(
    app: FastAPI, client: httpx.AsyncClient, database: Database, action: Action
) -> None:
    target = await add_user(database, "boss", ["CLUSTER_MANAGER"])
    key, _ = await make_key(app, "boss")
    response = await action(client, target.id, key)
    assert response.status_code == 200, response.json()


async def test_a_user_manager_cannot_become_admin_through_admins_password(
    app: FastAPI, client: httpx.AsyncClient, client_as: UserClientFactory
) -> None:
    manager = await client_as("USER_MANAGER", username="usermgr")
    admin_id = (await client.get(ME)).json()["data"]["id"]
    refused(await reset_password(manager, admin_id, ""), "**")
    async with client_for(app, "admin", NEW_PASSWORD) as takeover:
        assert (await takeover.get(ME)).status_code == 401
    assert (await client.get(ME)).status_code == 200


# ---- another user's access keys ------------------------------------------------------


def signed(app: FastAPI, key: tuple[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=SIGNED_BASE, auth=OcpAccessKeyAuth(*key)
    )


async def test_an_admin_lists_a_users_keys(
    app: FastAPI, client: httpx.AsyncClient, client_as: UserClientFactory, database: Database
) -> None:
    user = await add_user(database, "ops", ["CLUSTER_VIEWER"])
    first, secret = await make_key(app, "ops")
    second, _ = await make_key(app, "ops")
    await make_key(app, "admin", ADMIN_PASSWORD)
    listed = await client.get(f"{USERS}/{user.id}/accessKeys")
    body = listed.json()
    assert listed.status_code == 200, body
    contents = body["data"]["contents"]
    assert [k["accessKeyId"] for k in contents] == [first, second]
    assert all(set(k) == {"accessKeyId", "createTime"} for k in contents)
    assert secret not in listed.text
    async with client_for(app, "ops") as owner:
        own = (await owner.get("/api/v2/iam/accessKeys")).json()["data"]["contents"]
    assert own == contents  # the same shape as one's own list

    unknown = await client.get(f"{USERS}/999/accessKeys")
    assert unknown.status_code == 404, unknown.json()
    viewer = await client_as("CLUSTER_VIEWER")
    forbidden = await viewer.get(f"{USERS}/{user.id}/accessKeys")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "IAM11000"


async def test_an_admin_revokes_a_users_key(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    ops = await add_user(database, "ops", ["CLUSTER_VIEWER"])
    other = await add_user(database, "other", ["CLUSTER_VIEWER"])
    key = await make_key(app, "ops")
    others_key = await make_key(app, "other")

    for user_id, access_key_id in [(ops.id, others_key[0]), (ops.id, "AKNOSUCHKEY")]:
        missing = await client.delete(f"{USERS}/{user_id}/accessKeys/{access_key_id}")
        assert missing.status_code == 404, missing.json()
        assert missing.json()["error"]["code"] == "COM10002"
        assert access_key_id in missing.json()["error"]["message"]
    async with signed(app, others_key) as other_signed:
        assert (await other_signed.get(ME)).status_code == 200

    revoked = await client.delete(f"{USERS}/{ops.id}/accessKeys/{key[0]}")
    assert revoked.status_code == 200, revoked.json()
    async with signed(app, key) as ops_signed:
        response = await ops_signed.get(ME)
    assert response.status_code == 401
    assert "Unknown AccessKeyId" in response.json()["error"]["message"]
    listed = await client.get(f"{USERS}/{ops.id}/accessKeys")
    assert listed.json()["data"]["contents"] == []
    assert (await client.get(f"{USERS}/{other.id}/accessKeys")).json()["data"]["contents"]


async def test_a_password_reset_revokes_keys_and_sessions(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    user = await add_user(database, "ops", ["CLUSTER_VIEWER"])
    key = await make_key(app, "ops")
    async with client_for(app) as console:
        login = await console.post(
            "/api/v2/iam/login", json={"username": "ops", "password": USER_PASSWORD}
        )
        assert login.status_code == 200, login.json()
        reset = await client.post(
            f"{USERS}/{user.id}/changePassword", json={"newPassword": NEW_PASSWORD}
        )
        assert reset.status_code == 200, reset.json()
        assert (await console.get(ME)).status_code == 401
    async with signed(app, key) as ops_signed:
        assert (await ops_signed.get(ME)).status_code == 401
    assert (await client.get(f"{USERS}/{user.id}/accessKeys")).json()["data"]["contents"] == []
    async with client_for(app, "ops", NEW_PASSWORD) as ops:
        assert (await ops.get(ME)).status_code == 200


async def test_ones_own_password_change_keeps_keys_and_this_session(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    await add_user(database, "ops", ["CLUSTER_VIEWER"])
    key = await make_key(app, "ops")
    credentials = {"username": "ops", "password": USER_PASSWORD}
    async with client_for(app) as console, client_for(app) as elsewhere:
        assert (await console.post("/api/v2/iam/login", json=credentials)).status_code == 200
        assert (await elsewhere.post("/api/v2/iam/login", json=credentials)).status_code == 200
        changed = await console.post(
            f"{ME}/changePassword",
            json={"currentPassword": USER_PASSWORD, "newPassword": NEW_PASSWORD},
            headers={"X-CSRF-Token": console.cookies["obpilot_csrf"]},
        )
        assert changed.status_code == 200, changed.json()
        assert (await console.get(ME)).status_code == 200
        assert (await elsewhere.get(ME)).status_code == 401
    async with signed(app, key) as ops_signed:
        assert (await ops_signed.get(ME)).status_code == 200
    async with database.transaction() as session:
        assert len(list(await session.scalars(select(ConsoleSession)))) == 1


# ---- the operator, on the command line ----------------------------------------------


def obpilot_user(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "OBPILOT_HOME": str(home)}
    environment.pop("OBPILOT_METADB_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "obpilot", "user", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_the_operator_unlocks_from_the_command_line(tmp_path: Path) -> None:
    """`obpilot user unlock` ends a lock and keeps the password (`passwd` also unlocks, but
    resets the password and revokes the user's sessions and keys)."""
    created = obpilot_user(
        tmp_path, "create", "ops", "--password-stdin", stdin=f"{USER_PASSWORD}\n"
    )
    assert created.returncode == 0, created.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'obpilot.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE iam_user SET locked_until = '2999-01-01 00:00:00', failed_attempts = 0"
                )
            )
            before = connection.execute(text("SELECT password_hash FROM iam_user")).scalar_one()
        assert obpilot_user(tmp_path, "list").stdout.split()[-2] == "locked"

        unlocked = obpilot_user(tmp_path, "unlock", "ops")

        assert unlocked.returncode == 0, unlocked.stderr
        assert unlocked.stdout.strip() == "ops unlocked"
        assert obpilot_user(tmp_path, "list").stdout.split()[-2] == "enabled"
        with engine.connect() as connection:
            after = connection.execute(text("SELECT password_hash FROM iam_user")).scalar_one()
        assert after == before
        missing = obpilot_user(tmp_path, "unlock", "ghost")
        assert missing.returncode == 1
        assert "User ghost does not exist" in missing.stderr
    finally:
        engine.dispose()


def test_the_operators_password_reset_revokes_keys_and_sessions(tmp_path: Path) -> None:
    password = f"{USER_PASSWORD}\n"
    created = obpilot_user(tmp_path, "create", "ops", "--password-stdin", stdin=password)
    assert created.returncode == 0, created.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'obpilot.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO iam_access_key (access_key_id, user_id, secret_encrypted, "
                    "create_time) VALUES ('AKOPS', 1, 'x', '2026-01-01 00:00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO iam_session (token_hash, csrf_hash, user_id, create_time, "
                    "expires_at) VALUES ('t', 'c', 1, '2026-01-01 00:00:00', '2999-01-01 00:00:00')"
                )
            )

        reset = obpilot_user(tmp_path, "passwd", "ops", "--password-stdin", stdin=NEW_PASSWORD)

        assert reset.returncode == 0, reset.stderr
        assert "sessions and access keys revoked" in reset.stdout
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT count(*) FROM iam_access_key")).scalar_one()
            sessions = connection.execute(text("SELECT count(*) FROM iam_session")).scalar_one()
        assert (keys, sessions) == (0, 0)
    finally:
        engine.dispose()
