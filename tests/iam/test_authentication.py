"""HTTP Basic, lockout, disabled accounts and console sessions, each refusal with its code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from obpilot.app import create_app
from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.iam.models import ConsoleSession
from obpilot.settings import Settings
from tests.support.iam import ADMIN_PASSWORD, USER_PASSWORD, add_user, client_for

ME = "/api/v2/iam/users/me"


def error(response: httpx.Response, status: int, code: str) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["successful"] is False
    assert body["status"] == status
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


@pytest.fixture
async def quick_lock_app(database: Database, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """An app whose accounts lock after 3 failures, for 2 s: long enough to see the lock
    even on a busy machine."""
    settings = Settings(
        home=tmp_path,
        metadb_url=database.url.render_as_string(hide_password=False),
        admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        lockout_attempts=3,
        lockout_seconds=2,
    )
    app = create_app(settings, run_migrations=False)
    async with app.router.lifespan_context(app):
        yield app


class TestBasic:
    async def test_no_credentials(self, client: httpx.AsyncClient) -> None:
        response = await client.get(ME, auth=None)
        error(response, 401, "IAM10000")
        assert response.headers["www-authenticate"].startswith("Basic")

    async def test_no_basic_challenge_for_the_console(self, client: httpx.AsyncClient) -> None:
        headers = {"X-Requested-With": "XMLHttpRequest"}
        response = await client.get(ME, auth=None, headers=headers)
        error(response, 401, "IAM10000")
        assert "www-authenticate" not in response.headers
        client.cookies.set("obpilot_session", "stale")
        response = await client.get(ME, auth=None)
        client.cookies.clear()
        error(response, 401, "IAM10000")
        assert "www-authenticate" not in response.headers

    async def test_info_and_login_need_none(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/v2/info", auth=None)).status_code == 200

    @pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "bm9jb2xvbg==", "Bearer abc"])
    async def test_malformed_or_unsupported(self, client: httpx.AsyncClient, header: str) -> None:
        error(await client.get(ME, headers={"Authorization": header}, auth=None), 401, "IAM10000")

    async def test_unknown_user(self, client: httpx.AsyncClient) -> None:
        # Answered like an account's first failure: the answer does not tell who exists.
        message = error(await client.get(ME, auth=("ghost", "whatever")), 401, "IAM10004")
        assert message == "Bad username or password; 4 attempt(s) left before the account is locked"

    async def test_wrong_password_counts_down(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "carol")
        messages = [
            error(await client.get(ME, auth=("carol", "wrong")), 401, "IAM10004") for _ in range(4)
        ]
        assert [m.split("; ")[1] for m in messages] == [
            f"{n} attempt(s) left before the account is locked" for n in (4, 3, 2, 1)
        ]
        # The fifth failure locks; then even the right password is refused.
        error(await client.get(ME, auth=("carol", "wrong")), 401, "IAM10003")
        message = error(await client.get(ME, auth=("carol", USER_PASSWORD)), 401, "IAM10003")
        assert "locked" in message

    async def test_lock_lasts_ten_minutes_by_default(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "dave")
        for _ in range(5):
            await client.get(ME, auth=("dave", "wrong"))
        users = (await client.get("/api/v2/iam/users", params={"keyword": "dave"})).json()
        user = users["data"]["contents"][0]
        assert user["locked"] is True
        from datetime import datetime

        until = datetime.fromisoformat(user["lockedUntil"])
        assert timedelta(minutes=9) < until - utcnow() <= timedelta(minutes=10)

    async def test_success_resets_the_count(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "erin")
        for _ in range(3):
            await client.get(ME, auth=("erin", "wrong"))
        assert (await client.get(ME, auth=("erin", USER_PASSWORD))).status_code == 200
        message = error(await client.get(ME, auth=("erin", "wrong")), 401, "IAM10004")
        assert "4 attempt(s) left" in message

    async def test_lock_expires(self, quick_lock_app: FastAPI, database: Database) -> None:
        await add_user(database, "frank")
        async with client_for(quick_lock_app) as anonymous:
            for _ in range(2):
                error(await anonymous.get(ME, auth=("frank", "wrong")), 401, "IAM10004")
            error(await anonymous.get(ME, auth=("frank", "wrong")), 401, "IAM10003")
            error(await anonymous.get(ME, auth=("frank", USER_PASSWORD)), 401, "IAM10003")
            deadline = time.monotonic() + 10
            while True:
                response = await anonymous.get(ME, auth=("frank", USER_PASSWORD))
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert response.status_code == 200, response.json()
            # A fresh start: the full number of attempts again.
            message = error(await anonymous.get(ME, auth=("frank", "x")), 401, "IAM10004")
            assert "2 attempt(s) left" in message

    async def test_admin_unlocks(self, client: httpx.AsyncClient, database: Database) -> None:
        user = await add_user(database, "gina")
        for _ in range(5):
            await client.get(ME, auth=("gina", "wrong"))
        error(await client.get(ME, auth=("gina", USER_PASSWORD)), 401, "IAM10003")
        unlocked = await client.post(f"/api/v2/iam/users/{user.id}/unlock")
        assert unlocked.json()["data"]["locked"] is False
        assert (await client.get(ME, auth=("gina", USER_PASSWORD))).status_code == 200

    async def test_disabled(self, client: httpx.AsyncClient, database: Database) -> None:
        user = await add_user(database, "hank")
        assert (await client.get(ME, auth=("hank", USER_PASSWORD))).status_code == 200
        await client.put(f"/api/v2/iam/users/{user.id}", json={"enabled": False})
        error(await client.get(ME, auth=("hank", USER_PASSWORD)), 401, "IAM10001")
        error(await client.get(ME, auth=("hank", "wrong")), 401, "IAM10004")
        await client.put(f"/api/v2/iam/users/{user.id}", json={"enabled": True})
        assert (await client.get(ME, auth=("hank", USER_PASSWORD))).status_code == 200

    async def test_changed_password_is_effective_at_once(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        user = await add_user(database, "ivy")
        # Verified once, so now remembered by the Basic cache...
        assert (await client.get(ME, auth=("ivy", USER_PASSWORD))).status_code == 200
        reset = await client.post(
            f"/api/v2/iam/users/{user.id}/changePassword", json={"newPassword": "New-Passw0rd!"}
        )
        assert reset.status_code == 200, reset.json()
        # ...yet the old password stops working immediately.
        error(await client.get(ME, auth=("ivy", USER_PASSWORD)), 401, "IAM10004")
        assert (await client.get(ME, auth=("ivy", "New-Passw0rd!"))).status_code == 200

    async def test_own_password_change(self, client: httpx.AsyncClient, database: Database) -> None:
        await add_user(database, "jack")
        url = "/api/v2/iam/users/me/changePassword"
        auth = ("jack", USER_PASSWORD)
        wrong = await client.post(
            url, json={"currentPassword": "nope", "newPassword": "Jack-Passw0rd2"}, auth=auth
        )
        error(wrong, 400, "COM10001")
        weak = await client.post(
            url, json={"currentPassword": USER_PASSWORD, "newPassword": "short"}, auth=auth
        )
        error(weak, 400, "COM10001")
        done = await client.post(
            url, json={"currentPassword": USER_PASSWORD, "newPassword": "Jack-Passw0rd2"}, auth=auth
        )
        assert done.status_code == 200, done.json()
        error(await client.get(ME, auth=auth), 401, "IAM10004")
        assert (await client.get(ME, auth=("jack", "Jack-Passw0rd2"))).status_code == 200


class TestSessions:
    @staticmethod
    async def _login(console: httpx.AsyncClient, username: str) -> None:
        response = await console.post(
            "/api/v2/iam/login", json={"username": username, "password": USER_PASSWORD}
        )
        assert response.status_code == 200, response.json()

    async def test_login_with_json_sets_safe_cookies(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "kim", ["CLUSTER_VIEWER"])
        async with client_for(app) as console:
            response = await console.post(
                "/api/v2/iam/login", json={"username": "kim", "password": USER_PASSWORD}
            )
            assert response.json()["data"]["username"] == "kim"
            cookies = {c.split("=")[0]: c for c in response.headers.get_list("set-cookie")}
            session_cookie = cookies["obpilot_session"].lower()
            assert "httponly" in session_cookie
            assert "samesite=lax" in session_cookie
            assert "secure" not in session_cookie
            assert "httponly" not in cookies["obpilot_csrf"].lower()
            me = await console.get(ME)
            assert me.json()["data"]["username"] == "kim"

    async def test_login_with_a_form_behind_tls(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "lee")
        async with client_for(app) as console:
            response = await console.post(
                "/api/v2/iam/login",
                data={"username": "lee", "password": USER_PASSWORD},
                headers={"X-Forwarded-Proto": "https"},
            )
        assert response.status_code == 200, response.json()
        for cookie in response.headers.get_list("set-cookie"):
            assert "secure" in cookie.lower()

    async def test_bad_logins(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "mia")
        async with client_for(app) as console:
            wrong = await console.post(
                "/api/v2/iam/login", json={"username": "mia", "password": "nope"}
            )
            error(wrong, 401, "IAM10004")
            assert "set-cookie" not in wrong.headers
            error(
                await console.post("/api/v2/iam/login", json={"username": "mia"}), 400, "COM10001"
            )
            error(
                await console.post(
                    "/api/v2/iam/login", content=b"{", headers={"Content-Type": "application/json"}
                ),
                400,
                "COM10001",
            )
            error(await console.get(ME), 401, "IAM10000")

    async def test_writes_need_the_csrf_token(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "ned")
        async with client_for(app) as console:
            await self._login(console, "ned")
            error(await console.post("/api/v2/iam/accessKeys"), 403, "IAM11000")
            wrong = {"X-CSRF-Token": "forged"}
            error(await console.post("/api/v2/iam/accessKeys", headers=wrong), 403, "IAM11000")
            right = {"X-CSRF-Token": console.cookies["obpilot_csrf"]}
            assert (await console.post("/api/v2/iam/accessKeys", headers=right)).status_code == 200
            # Reads need no token.
            assert (await console.get("/api/v2/iam/accessKeys")).status_code == 200

    async def test_logout_revokes(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "ola")
        async with client_for(app) as console:
            await self._login(console, "ola")
            token = console.cookies["obpilot_session"]
            csrf = {"X-CSRF-Token": console.cookies["obpilot_csrf"]}
            assert (await console.post("/api/v2/iam/logout", headers=csrf)).status_code == 200
        async with client_for(app) as stale:
            stale.cookies.set("obpilot_session", token)
            message = error(await stale.get(ME), 401, "IAM10000")
        assert "log in again" in message

    async def test_token_is_stored_only_as_a_hash_and_expires(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "pat")
        async with client_for(app) as console:
            await self._login(console, "pat")
            token = console.cookies["obpilot_session"]
            async with database.transaction() as session:
                stored = (await session.scalars(select(ConsoleSession))).one()
            assert token not in (stored.token_hash, stored.csrf_hash)
            assert len(stored.token_hash) == 64
            assert stored.expires_at - utcnow() > timedelta(hours=7)
            async with database.transaction(write=True) as session:
                await session.execute(
                    update(ConsoleSession).values(expires_at=utcnow() - timedelta(seconds=1))
                )
            error(await console.get(ME), 401, "IAM10000")

    async def test_sessions_end_when_the_user_is_disabled(
        self, app: FastAPI, client: httpx.AsyncClient, database: Database
    ) -> None:
        user = await add_user(database, "quinn")
        async with client_for(app) as console:
            await self._login(console, "quinn")
            await client.put(f"/api/v2/iam/users/{user.id}", json={"enabled": False})
            error(await console.get(ME), 401, "IAM10000")


WRONG_LOGIN = {"username": "admin", "password": "not-the-password"}


async def test_a_page_s_refused_login_gets_no_challenge(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v2/iam/login",
        json=WRONG_LOGIN,
        auth=None,
        headers={"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "IAM10004"
    assert "www-authenticate" not in response.headers


async def test_other_callers_keep_the_challenge_on_a_refused_login(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v2/iam/login", json=WRONG_LOGIN, auth=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
