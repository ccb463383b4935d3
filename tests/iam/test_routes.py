"""The identity-and-access API: users, roles, the caller, and the audit log."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from obpilot.db.engine import Database
from tests.conftest import UserClientFactory
from tests.support.iam import USER_PASSWORD, add_user, client_for

USERS = "/api/v2/iam/users"
ROLES = "/api/v2/iam/roles"
AUDIT = "/api/v2/iam/auditEvents"


def data(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert response.status_code == 200, body
    assert body["successful"] is True
    return dict(body.get("data") or {})


def error(response: httpx.Response, status: int, code: str) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


async def role_id(client: httpx.AsyncClient, name: str) -> int:
    roles = data(await client.get(ROLES, params={"size": 100}))["contents"]
    assert isinstance(roles, list)
    return int(next(r["id"] for r in roles if r["name"] == name))


class TestUsers:
    async def test_create_get_list_update_delete(self, client: httpx.AsyncClient) -> None:
        created = data(
            await client.post(
                USERS,
                json={
                    "username": "alice",
                    "password": "Alice-Passw0rd",
                    "email": "alice@example.com",
                    "roles": ["CLUSTER_VIEWER", "TASK_MANAGER"],
                },
            )
        )
        assert created["username"] == "alice"
        assert [r["name"] for r in created["roles"]] == ["CLUSTER_VIEWER", "TASK_MANAGER"]  # type: ignore[attr-defined]
        assert "password" not in str(created).lower()
        user_id = created["id"]
        assert data(await client.get(f"{USERS}/{user_id}"))["email"] == "alice@example.com"
        listed = data(await client.get(USERS, params={"keyword": "ali"}))
        assert [u["username"] for u in listed["contents"]] == ["alice"]  # type: ignore[attr-defined]
        updated = data(await client.put(f"{USERS}/{user_id}", json={"email": None}))
        assert updated["email"] is None
        assert updated["enabled"] is True
        roles = data(await client.put(f"{USERS}/{user_id}/roles", json={"roles": ["HOST_VIEWER"]}))
        assert [r["name"] for r in roles["roles"]] == ["HOST_VIEWER"]  # type: ignore[attr-defined]
        assert (await client.delete(f"{USERS}/{user_id}")).status_code == 200
        error(await client.get(f"{USERS}/{user_id}"), 404, "COM10002")

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            ({"username": "b", "password": "Bob-Passw0rd"}, "username"),
            ({"username": "1bob", "password": "Bob-Passw0rd"}, "username"),
            ({"username": "bob", "password": "short"}, "8 to 128"),
            ({"username": "bob", "password": "alllowercase1"}, "three of"),
            ({"username": "bob", "password": "Bob-Passw0rd", "email": "nope"}, "e-mail"),
            ({"username": "bob", "password": "Bob-Passw0rd", "roles": ["NO_SUCH"]}, "NO_SUCH"),
            ({"username": "bob", "password": "Bob-Passw0rd", "roles": ["bad name!"]}, "role"),
            ({"username": "bob"}, "password"),
        ],
    )
    async def test_bad_input_changes_nothing(
        self, client: httpx.AsyncClient, body: dict[str, object], fragment: str
    ) -> None:
        message = error(await client.post(USERS, json=body), 400, "COM10001")
        assert fragment in message
        assert "Bob-Passw0rd" not in message
        assert data(await client.get(USERS))["page"]["totalElements"] == 1  # type: ignore[index]

    async def test_duplicate_username(self, client: httpx.AsyncClient) -> None:
        body = {"username": "dup", "password": "Dup-Passw0rd"}
        data(await client.post(USERS, json=body))
        error(await client.post(USERS, json=body), 409, "COM10006")

    async def test_unknown_user(self, client: httpx.AsyncClient) -> None:
        error(await client.get(f"{USERS}/999"), 404, "COM10002")
        error(await client.put(f"{USERS}/999/roles", json={"roles": []}), 404, "COM10002")
        error(await client.get(f"{USERS}/0"), 400, "COM10001")

    async def test_me(self, client: httpx.AsyncClient, client_as: UserClientFactory) -> None:
        me = data(await client.get(f"{USERS}/me"))
        assert me["username"] == "admin"
        assert me["permissions"] == ["**"]
        viewer = data(await (await client_as("HOST_VIEWER")).get(f"{USERS}/me"))
        assert viewer["permissions"] == ["HOST:*:READ", "PACKAGE:*:READ"]

    async def test_no_one_can_grant_what_they_do_not_hold(
        self, client: httpx.AsyncClient, client_as: UserClientFactory
    ) -> None:
        manager = await client_as("USER_MANAGER", username="usermgr")
        body = {"username": "eve", "password": "Eve-Passw0rd", "roles": ["ADMIN"]}
        error(await manager.post(USERS, json=body), 403, "IAM11000")
        body["roles"] = ["USER_MANAGER"]
        data(await manager.post(USERS, json=body))
        me = data(await manager.get(f"{USERS}/me"))
        escalate = await manager.put(f"{USERS}/{me['id']}/roles", json={"roles": ["ADMIN"]})
        error(escalate, 403, "IAM11000")

    async def test_the_last_admin_stays(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        me = data(await client.get(f"{USERS}/me"))
        error(await client.put(f"{USERS}/{me['id']}/roles", json={"roles": []}), 409, "COM10005")
        error(await client.delete(f"{USERS}/{me['id']}"), 400, "COM10001")
        error(await client.put(f"{USERS}/{me['id']}", json={"enabled": False}), 400, "COM10001")
        other = data(
            await client.post(
                USERS, json={"username": "root2", "password": "Root-Passw0rd", "roles": ["ADMIN"]}
            )
        )
        data(await client.put(f"{USERS}/{me['id']}/roles", json={"roles": ["PROFILE"]}))
        async with client_for(app, "root2", "Root-Passw0rd") as root2:
            refused = await root2.put(f"{USERS}/{other['id']}/roles", json={"roles": []})
        error(refused, 409, "COM10005")


class TestRoles:
    async def test_default_roles_are_listed_and_fixed(self, client: httpx.AsyncClient) -> None:
        listed = data(await client.get(ROLES, params={"builtin": "true", "size": 50}))
        assert listed["page"]["totalElements"] == 21  # type: ignore[index]
        admin_id = await role_id(client, "ADMIN")
        admin = data(await client.get(f"{ROLES}/{admin_id}"))
        assert admin["permissions"] == ["**"]
        assert admin["builtin"] is True
        error(await client.put(f"{ROLES}/{admin_id}", json={"description": "x"}), 400, "COM10001")
        error(await client.delete(f"{ROLES}/{admin_id}"), 400, "COM10001")

    async def test_custom_role_lifecycle(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        created = data(
            await client.post(
                ROLES,
                json={
                    "name": "OPS_C1",
                    "description": "operate cluster 1",
                    "permissions": ["CLUSTER:1:READ", "CLUSTER:1:UPDATE", "CLUSTER:1:READ"],
                },
            )
        )
        assert created["permissions"] == ["CLUSTER:1:READ", "CLUSTER:1:UPDATE"]
        assert created["builtin"] is False
        updated = data(
            await client.put(f"{ROLES}/{created['id']}", json={"permissions": ["CLUSTER:1:*"]})
        )
        assert updated["permissions"] == ["CLUSTER:1:*"]
        assert updated["description"] == "operate cluster 1"
        error(
            await client.post(ROLES, json={"name": "OPS_C1", "permissions": ["**"]}),
            409,
            "COM10006",
        )
        await add_user(database, "opsuser", ["OPS_C1"])
        error(await client.delete(f"{ROLES}/{created['id']}"), 409, "COM10005")
        user = data(await client.get(USERS, params={"keyword": "opsuser"}))["contents"][0]  # type: ignore[index]
        data(await client.put(f"{USERS}/{user['id']}/roles", json={"roles": []}))
        data(await client.delete(f"{ROLES}/{created['id']}"))
        error(await client.get(f"{ROLES}/{created['id']}"), 404, "COM10002")

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "X", "permissions": ["CLUSTER:1:READ"]},
            {"name": "1ROLE", "permissions": ["CLUSTER:1:READ"]},
            {"name": "ROLE_", "permissions": ["CLUSTER:1:READ"]},
            {"name": "GOOD", "permissions": []},
            {"name": "GOOD", "permissions": ["CLUSTER:one:READ"]},
            {"name": "GOOD", "permissions": ["CLUSTER:1:EXPLODE"]},
            {"name": "GOOD"},
        ],
    )
    async def test_bad_roles(self, client: httpx.AsyncClient, body: dict[str, object]) -> None:
        error(await client.post(ROLES, json=body), 400, "COM10001")
        listed = data(await client.get(ROLES, params={"builtin": "false"}))
        assert listed["page"]["totalElements"] == 0  # type: ignore[index]

    async def test_role_manager_grants_only_what_it_holds(
        self, client_as: UserClientFactory
    ) -> None:
        manager = await client_as("ROLE_MANAGER")
        body = {"name": "SNEAKY", "permissions": ["CLUSTER:*:UPDATE"]}
        error(await manager.post(ROLES, json=body), 403, "IAM11000")
        data(await manager.post(ROLES, json={"name": "ROLES_RO", "permissions": ["ROLE:*:READ"]}))


class TestAudit:
    async def test_writes_and_logins_are_recorded(
        self, client: httpx.AsyncClient, client_as: UserClientFactory
    ) -> None:
        viewer = await client_as("CLUSTER_VIEWER", username="viewer")
        created = await client.post(USERS, json={"username": "zed", "password": "Zed-Passw0rd"})
        refused = await viewer.post("/api/v2/compute/hosts", json={"innerIpAddress": "10.0.0.1"})
        conflict = await client.post(USERS, json={"username": "zed", "password": "Zed-Passw0rd"})
        bad_login = await client.post(
            "/api/v2/iam/login", json={"username": "zed", "password": "wrong"}, auth=None
        )
        bad_basic = await client.get(f"{USERS}/me", auth=("zed", "wrong"))
        read = await viewer.get("/api/v2/ob/clusters")
        events = data(await client.get(AUDIT, params={"size": 50}))["contents"]
        assert isinstance(events, list)
        summary = [
            (e["username"], e["action"], e["method"], e["status"], e["errorCode"], e["result"])
            for e in events
        ]
        assert summary == [
            ("zed", "authenticate", "GET", 401, "IAM10004", "FAILURE"),
            ("zed", "login", "POST", 401, "IAM10004", "FAILURE"),
            ("admin", "create_user", "POST", 409, "COM10006", "FAILURE"),
            ("viewer", "create_host", "POST", 403, "IAM11000", "FAILURE"),
            ("admin", "create_user", "POST", 200, None, "SUCCESS"),
        ]
        by_trace = {e["traceId"]: e for e in events}
        for response in (created, refused, conflict, bad_login, bad_basic):
            assert response.json()["traceId"] in by_trace
        assert read.json()["traceId"] not in by_trace  # successful reads are not audited
        assert events[-1]["resource"] == USERS
        assert events[-1]["authMethod"] == "basic"
        assert events[-1]["sourceAddress"] == "127.0.0.1"

    async def test_filters_and_paging(self, client: httpx.AsyncClient) -> None:
        for name in ("u1", "u2", "u3"):
            await client.post(USERS, json={"username": name, "password": "Some-Passw0rd"})
        await client.post("/api/v2/iam/login", json={"username": "u1", "password": "x"}, auth=None)
        first = data(await client.get(AUDIT, params={"size": 2, "action": "create_user"}))
        assert first["page"] == {"totalElements": 3, "totalPages": 2, "number": 1, "size": 2}
        failures = data(await client.get(AUDIT, params={"result": "FAILURE"}))["contents"]
        assert [e["action"] for e in failures] == ["login"]  # type: ignore[index]
        by_user = data(await client.get(AUDIT, params={"username": "u1"}))["contents"]
        assert [e["username"] for e in by_user] == ["u1"]  # type: ignore[index]
        oldest = data(await client.get(AUDIT, params={"sort": "id,asc", "size": 1}))["contents"]
        assert oldest[0]["action"] == "create_user"  # type: ignore[index]
        future = data(await client.get(AUDIT, params={"startTime": "2999-01-01T00:00:00Z"}))
        assert future["contents"] == []
        error(await client.get(AUDIT, params={"result": "MAYBE"}), 400, "COM10001")

    async def test_audit_viewer_reads_but_cannot_write(
        self, client: httpx.AsyncClient, client_as: UserClientFactory
    ) -> None:
        auditor = await client_as("AUDIT_VIEWER")
        assert (await auditor.get(AUDIT)).status_code == 200
        error(await auditor.post(USERS, json={}), 403, "IAM11000")

    async def test_login_success_is_recorded(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        await add_user(database, "sam")
        response = await client.post(
            "/api/v2/iam/login", json={"username": "sam", "password": USER_PASSWORD}, auth=None
        )
        assert response.status_code == 200
        events = data(await client.get(AUDIT, params={"action": "login"}))["contents"]
        assert [(e["username"], e["result"], e["authMethod"]) for e in events] == [  # type: ignore[attr-defined]
            ("sam", "SUCCESS", "session")
        ]
