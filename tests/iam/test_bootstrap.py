"""First start: `admin` with the ADMIN role, its password from the setting or generated and
shown once on stderr (never in the log); idempotent, also when instances start together."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from obpilot.app import create_app
from obpilot.db.engine import Database
from obpilot.iam import service
from obpilot.iam.passwords import verify_password
from obpilot.iam.repository import UserRepository
from obpilot.settings import Settings
from tests.support.iam import client_for, json_logs


async def test_given_password(database: Database) -> None:
    first = await service.ensure_first_admin(database, password="Given-Passw0rd")
    assert first == service.FirstAdmin(created=True, generated_password=None)
    async with database.transaction() as session:
        admin = await UserRepository(session).get_by_username("admin")
    assert admin is not None
    assert [r.name for r in admin.roles] == ["ADMIN"]
    assert admin.password_hash.startswith("$argon2id$")
    assert verify_password(admin.password_hash, "Given-Passw0rd")
    again = await service.ensure_first_admin(database, password="Other-Passw0rd")
    assert again.created is False
    async with database.transaction() as session:
        admin = await UserRepository(session).get_by_username("admin")
    assert admin is not None
    assert verify_password(admin.password_hash, "Given-Passw0rd")


async def test_generated_password_is_shown_once_on_stderr_only(
    database: Database,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = database.url.render_as_string(hide_password=False)
    app = create_app(Settings(home=tmp_path, metadb_url=url), run_migrations=False)
    with json_logs():
        async with app.router.lifespan_context(app):
            pass
    err = capsys.readouterr().err
    banner = [line for line in err.splitlines() if "shown only this once" in line]
    assert len(banner) == 1
    password = banner[0].rsplit(": ", 1)[1].strip()
    log_lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("printed once on stderr" in line["event"] for line in log_lines)
    assert all(password not in json.dumps(line) for line in log_lines)

    async with app.router.lifespan_context(app), client_for(app, "admin", password) as admin:
        me = await admin.get("/api/v2/iam/users/me")
    assert me.json()["data"]["roles"][0]["name"] == "ADMIN"
    assert password not in capsys.readouterr().err  # the second start shows nothing


async def test_instances_starting_together_make_one_admin(any_database: Database) -> None:
    url = any_database.url.render_as_string(hide_password=False)
    instances = [Database(url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(service.ensure_first_admin(db, password=None) for db in instances)
        )
    finally:
        for db in instances:
            await db.dispose()
    assert sum(result.created for result in results) == 1
    assert [r.generated_password is not None for r in results].count(True) == 1
    async with any_database.transaction() as session:
        assert await UserRepository(session).count() == 1


async def test_no_admin_is_made_when_users_exist(database: Database) -> None:
    from tests.support.iam import add_user

    await add_user(database, "early", ["ADMIN"])
    assert (await service.ensure_first_admin(database, password=None)).created is False


async def test_anonymous_info_still_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v2/info", auth=None)).json()["successful"] is True
