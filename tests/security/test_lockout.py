"""The password lockout (issue point 2).

Before: a locked account also refused its access keys and open console sessions, so anyone
could cut a user off from afar by guessing five times every ten minutes; in a burst of 20
concurrent guesses 16 were verified and the right password in the same burst got in; and only
existing users were told "N attempt(s) left", which told who exists."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from obpilot.app import create_app
from obpilot.db.engine import Database
from obpilot.errors import TooManyRequests
from obpilot.iam import passwords
from obpilot.iam.models import ConsoleSession, User
from obpilot.settings import Settings
from tests.support.iam import ADMIN_PASSWORD, USER_PASSWORD, add_user, client_for
from tests.support.ocp_client import OcpAccessKeyAuth

ME = "/api/v2/iam/users/me"
LOGIN = "/api/v2/iam/login"
LOCKOUT_ATTEMPTS = 5  # the default


class CountingVerify:
    """The real password check, counted."""

    def __init__(self) -> None:
        self.real = passwords.verify_password_async
        self.calls = 0
        self.lockout_reached = asyncio.Event()

    async def __call__(self, stored_hash: str | None, password: str) -> bool:
        self.calls += 1
        if self.calls == LOCKOUT_ATTEMPTS:
            self.lockout_reached.set()
        return await self.real(stored_hash, password)


@pytest.fixture
def verify(monkeypatch: pytest.MonkeyPatch) -> CountingVerify:
    counting = CountingVerify()
    monkeypatch.setattr(passwords, "verify_password_async", counting)
    return counting


AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture
async def app_with(database: Database, tmp_path: Path) -> AsyncIterator[AppFactory]:
    """`await app_with(setting=value, ...)`: a started app with those settings."""
    async with AsyncExitStack() as started:

        async def make(**settings: Any) -> FastAPI:
            app = create_app(
                Settings(
                    home=tmp_path,
                    metadb_url=database.url.render_as_string(hide_password=False),
                    advertised_address="test-node:8080",
                    admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
                    **settings,
                ),
                run_migrations=False,
            )
            await started.enter_async_context(app.router.lifespan_context(app))
            return app

        yield make


def from_address(app: FastAPI, address: str) -> httpx.AsyncClient:
    """An anonymous client whose connections come from `address`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://test-node:8080",
    )


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def failed_attempts(database: Database, username: str) -> int:
    async with database.transaction() as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        return user.failed_attempts


# ---- a lock stops password logins only -------------------------------------------------


async def test_a_locked_account_keeps_its_access_keys_and_sessions(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    user = await add_user(database, "ops", ["CLUSTER_VIEWER"])
    async with client_for(app, "ops") as ops:
        key = (await ops.post("/api/v2/iam/accessKeys")).json()["data"]
    signed = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test-node:8080",
        auth=OcpAccessKeyAuth(key["accessKeyId"], key["accessKeySecret"]),
    )
    async with client_for(app) as console, signed:
        login = await console.post(LOGIN, json={"username": "ops", "password": USER_PASSWORD})
        assert login.status_code == 200, login.json()
        for _ in range(LOCKOUT_ATTEMPTS):
            await client.get(ME, auth=("ops", "wrong"))

        assert code(await client.get(ME, auth=("ops", USER_PASSWORD))) == (401, "IAM10003")
        relogin = await client.post(
            LOGIN, json={"username": "ops", "password": USER_PASSWORD}, auth=None
        )
        assert code(relogin) == (401, "IAM10003")
        assert (await signed.get(ME)).status_code == 200
        assert (await console.get(ME)).status_code == 200

        # A disabled account still refuses everything.
        await client.put(f"/api/v2/iam/users/{user.id}", json={"enabled": False})
        assert code(await signed.get(ME)) == (401, "IAM10001")
        assert code(await console.get(ME)) == (401, "IAM10000")


# ---- concurrent guesses ----------------------------------------------------------------


async def test_a_burst_of_guesses_gets_no_more_verifications_than_allowed(
    any_client: httpx.AsyncClient, any_database: Database, verify: CountingVerify
) -> None:
    """On every metadb dialect: the attempt is counted atomically before the hash is
    checked, so 19 concurrent guesses get at most 5 checks, and the right password sent in
    the same burst once the account is locked is refused unchecked."""
    await add_user(any_database, "target")
    verify.calls = 0

    async def guess() -> httpx.Response:
        return await any_client.get(ME, auth=("target", "wrong"))

    async def right_password_after_the_lock() -> httpx.Response:
        # Sent once the last allowed attempt is being checked: the account is locked.
        await asyncio.wait_for(verify.lockout_reached.wait(), timeout=30)
        return await any_client.get(ME, auth=("target", USER_PASSWORD))

    *guesses, right = await asyncio.gather(
        *(guess() for _ in range(19)), right_password_after_the_lock()
    )

    assert verify.calls == LOCKOUT_ATTEMPTS
    codes = sorted(code(response) for response in guesses)
    assert codes == [(401, "IAM10003")] * 15 + [(401, "IAM10004")] * 4
    assert code(right) == (401, "IAM10003")
    assert "locked" in right.json()["error"]["message"]


async def test_a_cached_password_costs_no_attempt_and_the_right_one_leaves_none(
    client: httpx.AsyncClient, database: Database, verify: CountingVerify
) -> None:
    await add_user(database, "ops")
    await client.get(ME, auth=("ops", "wrong"))
    assert await failed_attempts(database, "ops") == 1
    assert (await client.get(ME, auth=("ops", USER_PASSWORD))).status_code == 200
    assert await failed_attempts(database, "ops") == 0
    verify.calls = 0
    for _ in range(3):
        assert (await client.get(ME, auth=("ops", USER_PASSWORD))).status_code == 200
    assert verify.calls == 0
    assert await failed_attempts(database, "ops") == 0


# ---- unknown names -------------------------------------------------------------------

TIME = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+[+-]\d\d:\d\d")


async def answers(
    client: httpx.AsyncClient, username: str, *, login: bool
) -> list[tuple[int, str, str]]:
    """Six wrong passwords, then the would-be right one: every answer, the name and times
    blanked."""
    seen: list[tuple[int, str, str]] = []
    for password in ["wrong"] * (LOCKOUT_ATTEMPTS + 1) + [USER_PASSWORD]:
        if login:
            response = await client.post(LOGIN, json={"username": username, "password": password})
        else:
            response = await client.get(ME, auth=(username, password))
        body = response.json()
        message = TIME.sub("<time>", body["error"]["message"]).replace(username, "<name>")
        seen.append((response.status_code, body["error"]["code"], message))
    return seen


@pytest.mark.parametrize("login", [False, True], ids=["basic", "login"])
async def test_unknown_names_are_answered_like_accounts(
    app: FastAPI, client: httpx.AsyncClient, database: Database, login: bool
) -> None:
    await add_user(database, "carol")
    async with from_address(app, "192.0.2.1") as first, from_address(app, "192.0.2.2") as second:
        known = await answers(first, "carol", login=login)
        unknown = await answers(second, "ghost", login=login)
    assert unknown == known
    assert [error_code for _, error_code, _ in known] == ["IAM10004"] * 4 + ["IAM10003"] * 3
    assert "1 attempt(s) left" in known[3][2]


# ---- failures per source address -------------------------------------------------------


async def test_failures_from_one_address_are_throttled_until_the_window_passes(
    app_with: AppFactory, database: Database
) -> None:
    app = await app_with(login_failures_per_address=3, lockout_seconds=5)
    for name in ("carol", "dave", "erin"):
        await add_user(database, name)
    async with from_address(app, "203.0.113.5") as guesser, from_address(app, "::1") as other:
        for name in ("carol", "ghost", "dave"):
            wrong = await guesser.post(LOGIN, json={"username": name, "password": "wrong"})
            assert code(wrong) == (401, "IAM10004")

        throttled = await guesser.post(LOGIN, json={"username": "erin", "password": USER_PASSWORD})
        assert code(throttled) == (429, TooManyRequests.code)
        message = throttled.json()["error"]["message"]
        assert "Too many failed password logins from 203.0.113.5" in message
        retry_after = int(throttled.headers["retry-after"])
        assert 1 <= retry_after <= 5
        # The refused attempt counted against no account, and other addresses go on.
        assert await failed_attempts(database, "erin") == 0
        credentials = {"username": "erin", "password": USER_PASSWORD}
        assert (await other.post(LOGIN, json=credentials)).status_code == 200

        await asyncio.sleep(retry_after)
        assert (await guesser.post(LOGIN, json=credentials)).status_code == 200


async def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(
    app_with: AppFactory, database: Database
) -> None:
    app = await app_with(login_failures_per_address=2, trusted_proxies=["10.0.0.0/8"])
    await add_user(database, "carol")
    wrong = {"username": "carol", "password": "wrong"}
    right = {"username": "carol", "password": USER_PASSWORD}

    def via(hops: str) -> dict[str, str]:
        return {"X-Forwarded-For": hops}

    async with from_address(app, "10.0.0.1") as proxy, from_address(app, "192.0.2.9") as direct:
        for _ in range(2):
            failed = await proxy.post(LOGIN, json=wrong, headers=via("198.51.100.7"))
            assert code(failed) == (401, "IAM10004")
        # The client cannot hide behind a made-up first hop; a second proxy is seen through.
        for hops in ("198.51.100.8, 198.51.100.7", "198.51.100.7, 10.0.0.2"):
            refused = await proxy.post(LOGIN, json=right, headers=via(hops))
            assert code(refused) == (429, TooManyRequests.code), hops
            assert "198.51.100.7" in refused.json()["error"]["message"]
        assert (await proxy.post(LOGIN, json=right, headers=via("198.51.100.8"))).status_code == 200
        async with database.transaction() as session:
            stored = await session.scalar(select(ConsoleSession.source_address))
        assert stored == "198.51.100.8"

        # An untrusted peer's X-Forwarded-For is its own invention: the peer is the client.
        for hops in ("203.0.113.1", "203.0.113.2"):
            await direct.post(LOGIN, json=wrong, headers=via(hops))
        refused = await direct.post(LOGIN, json=right, headers=via("203.0.113.3"))
        assert code(refused) == (429, TooManyRequests.code)
        assert "192.0.2.9" in refused.json()["error"]["message"]


async def test_basic_attempts_are_throttled_per_address_but_cached_ones_pass(
    app_with: AppFactory, database: Database
) -> None:
    app = await app_with(login_failures_per_address=2)
    await add_user(database, "carol")
    await add_user(database, "dave")
    me = "/api/v2/iam/users/me"
    async with from_address(app, "203.0.113.5") as guesser, from_address(app, "::1") as other:
        assert (await guesser.get(me, auth=("carol", USER_PASSWORD))).status_code == 200  # cached
        for _ in range(2):
            wrong = await guesser.get(me, auth=("dave", "wrong"))
            assert code(wrong) == (401, "IAM10004")
        throttled = await guesser.get(me, auth=("dave", USER_PASSWORD))
        assert code(throttled) == (429, TooManyRequests.code)
        assert "retry-after" in throttled.headers
        assert (await guesser.get(me, auth=("carol", USER_PASSWORD))).status_code == 200
        assert (await other.get(me, auth=("dave", USER_PASSWORD))).status_code == 200
    assert await failed_attempts(database, "dave") == 0  # the right password cleared them
