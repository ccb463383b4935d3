"""Every default role against every class of route: allowed or 403. The expected sets are
written out by hand from OCP's role table, not computed by obpilot's permission code.

Cluster updates and task reads/operations are checked on probe routes added here with the
same `require(...)` dependencies the real operation routes use; "allowed" means the request
got past the permission check (it may then fail for other reasons, e.g. 400 on a bad body,
which also shows that nothing was changed)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from obpilot.api.envelope import NoDataEnvelope, ok_no_data
from obpilot.api.params import ClusterId
from obpilot.db.engine import Database
from obpilot.iam.deps import require
from obpilot.iam.permissions import DEFAULT_ROLES
from tests.conftest import UserClientFactory
from tests.support.inventory import add_cluster, add_local_host

probe = APIRouter()


@probe.post(
    "/api/v2/test-probe/clusters/{id}/update",
    dependencies=[Depends(require("CLUSTER", "UPDATE", cluster_id_param="id"))],
)
async def probe_cluster_update(id: ClusterId) -> NoDataEnvelope:
    return ok_no_data()


@probe.get("/api/v2/test-probe/tasks", dependencies=[Depends(require("TASK", "READ"))])
async def probe_task_read() -> NoDataEnvelope:
    return ok_no_data()


@probe.post("/api/v2/test-probe/tasks/retry", dependencies=[Depends(require("TASK", "UPDATE"))])
async def probe_task_manage() -> NoDataEnvelope:
    return ok_no_data()


CLUSTER_READERS = {
    "ADMIN",
    "ALARM_MANAGER",
    "ALARM_VIEWER",
    "BACKUP_MANAGER",
    "CLUSTER_MANAGER",
    "CLUSTER_VIEWER",
    "OBPROXY_MANAGER",
    "OBPROXY_VIEWER",
    "TENANT_MANAGER",
    "TENANT_VIEWER",
}
HOST_READERS = CLUSTER_READERS | {"HOST_MANAGER", "HOST_VIEWER"}
HOST_WRITERS = {"ADMIN", "CLUSTER_MANAGER", "HOST_MANAGER"}
TASK_READERS = {
    "ADMIN",
    "BACKUP_MANAGER",
    "CLUSTER_MANAGER",
    "CLUSTER_VIEWER",
    "TASK_MANAGER",
    "TENANT_MANAGER",
    "TENANT_VIEWER",
}
TASK_MANAGERS = {"ADMIN", "BACKUP_MANAGER", "CLUSTER_MANAGER", "TASK_MANAGER"}
USER_READERS = {"ADMIN", "ALARM_MANAGER", "ALARM_VIEWER", "CLUSTER_MANAGER", "USER_MANAGER"}
EVERYONE = set(DEFAULT_ROLES)

# route class -> (method, path template, JSON body, roles allowed, code of the refusal)
ROUTE_CLASSES: dict[str, tuple[str, str, object, set[str], str]] = {
    "cluster list": ("GET", "/api/v2/ob/clusters", None, CLUSTER_READERS, "IAM11000"),
    "cluster read": ("GET", "/api/v2/ob/clusters/{cid}", None, CLUSTER_READERS, "IAM11000"),
    "zone list": ("GET", "/api/v2/ob/clusters/{cid}/zones", None, CLUSTER_READERS, "IAM11000"),
    "server list": (
        "GET",
        "/api/v2/ob/clusters/{cid}/zones/zone1/servers",
        None,
        CLUSTER_READERS,
        "IAM11000",
    ),
    "cluster update": (
        "POST",
        "/api/v2/test-probe/clusters/{cid}/update",
        None,
        {"ADMIN", "CLUSTER_MANAGER"},
        "OBE11065",
    ),
    "host read": ("GET", "/api/v2/compute/hosts", None, HOST_READERS, "IAM11000"),
    "host create": (
        "POST",
        "/api/v2/compute/hosts",
        {"innerIpAddress": "not-an-address"},
        HOST_WRITERS,
        "IAM11000",
    ),
    "host delete": ("DELETE", "/api/v2/compute/hosts/999999", None, HOST_WRITERS, "IAM11000"),
    "task read": ("GET", "/api/v2/test-probe/tasks", None, TASK_READERS, "IAM11000"),
    "task manage": ("POST", "/api/v2/test-probe/tasks/retry", None, TASK_MANAGERS, "IAM11000"),
    "user read": ("GET", "/api/v2/iam/users", None, USER_READERS, "IAM11000"),
    "user create": (
        "POST",
        "/api/v2/iam/users",
        {"username": "x"},
        {"ADMIN", "USER_MANAGER"},
        "IAM11000",
    ),
    "role read": (
        "GET",
        "/api/v2/iam/roles",
        None,
        {"ADMIN", "ROLE_MANAGER", "USER_MANAGER"},
        "IAM11000",
    ),
    "role create": (
        "POST",
        "/api/v2/iam/roles",
        {"name": "x"},
        {"ADMIN", "ROLE_MANAGER"},
        "IAM11000",
    ),
    "audit read": ("GET", "/api/v2/iam/auditEvents", None, {"ADMIN", "AUDIT_VIEWER"}, "IAM11000"),
    "own profile": ("GET", "/api/v2/iam/users/me", None, EVERYONE, "IAM11000"),
}


async def test_every_default_role_against_every_route_class(
    app: FastAPI, client: httpx.AsyncClient, client_as: UserClientFactory, database: Database
) -> None:
    app.include_router(probe)
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
    observed: dict[tuple[str, str], str] = {}
    expected: dict[tuple[str, str], str] = {}
    for role in sorted(DEFAULT_ROLES):
        as_role = await client_as(role)
        for name, (method, template, body, allowed, code) in ROUTE_CLASSES.items():
            response = await as_role.request(method, template.format(cid=cluster.id), json=body)
            payload = response.json()
            if response.status_code == 403:
                assert payload["successful"] is False
                assert payload["status"] == 403
                observed[role, name] = f"403 {payload['error']['code']}"
            else:
                observed[role, name] = "allowed"
            expected[role, name] = "allowed" if role in allowed else f"403 {code}"
    mismatches = {
        key: (observed[key], expected[key]) for key in expected if observed[key] != expected[key]
    }
    assert mismatches == {}, mismatches


async def test_allowed_callers_change_nothing_on_bad_input(
    client: httpx.AsyncClient, client_as: UserClientFactory
) -> None:
    host_manager = await client_as("HOST_MANAGER")
    response = await host_manager.post("/api/v2/compute/hosts", json={"innerIpAddress": "x"})
    assert response.status_code == 400
    assert (await client.get("/api/v2/compute/hosts")).json()["data"]["page"]["totalElements"] == 0


class TestPerClusterRoles:
    """A custom role with permissions on chosen clusters only."""

    @pytest.fixture
    async def clusters(self, database: Database) -> tuple[int, int]:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            first = await add_cluster(session, host, name="c1", zones=1, first_port=30000)
            second = await add_cluster(session, host, name="c2", zones=1, first_port=31000)
        return first.id, second.id

    async def _role(self, client: httpx.AsyncClient, name: str, permissions: list[str]) -> None:
        response = await client.post(
            "/api/v2/iam/roles", json={"name": name, "permissions": permissions}
        )
        assert response.status_code == 200, response.json()

    async def test_read_on_one_cluster(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        client_as: UserClientFactory,
        clusters: tuple[int, int],
    ) -> None:
        first, second = clusters
        await self._role(client, "C1_READER", [f"CLUSTER:{first}:READ"])
        reader = await client_as("C1_READER")
        assert (await reader.get(f"/api/v2/ob/clusters/{first}")).status_code == 200
        assert (await reader.get(f"/api/v2/ob/clusters/{first}/servers")).status_code == 200
        other = await reader.get(f"/api/v2/ob/clusters/{second}")
        missing = await reader.get("/api/v2/ob/clusters/999999")
        # No more is learnt from a 403 on an existing cluster than from one that is missing.
        assert other.status_code == missing.status_code == 403
        assert other.json()["error"]["code"] == missing.json()["error"]["code"] == "IAM11000"
        assert other.json()["error"]["message"].replace(str(second), "N") == missing.json()[
            "error"
        ]["message"].replace("999999", "N")
        # The list shows only the cluster the reader may read.
        listed = (await reader.get("/api/v2/ob/clusters")).json()["data"]["contents"]
        assert [cluster["id"] for cluster in listed] == [first]

    async def test_global_reader_learns_of_missing_clusters(
        self, client_as: UserClientFactory, clusters: tuple[int, int]
    ) -> None:
        viewer = await client_as("CLUSTER_VIEWER")
        response = await viewer.get("/api/v2/ob/clusters/999999")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "OBE11001"

    async def test_update_does_not_imply_read(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        client_as: UserClientFactory,
        clusters: tuple[int, int],
    ) -> None:
        app.include_router(probe)
        first, second = clusters
        await self._role(client, "C1_OPERATOR", [f"CLUSTER:{first}:UPDATE"])
        operator = await client_as("C1_OPERATOR")
        allowed = await operator.post(f"/api/v2/test-probe/clusters/{first}/update")
        assert allowed.status_code == 200, allowed.json()
        refused = await operator.post(f"/api/v2/test-probe/clusters/{second}/update")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "OBE11065"
        assert (await operator.get(f"/api/v2/ob/clusters/{first}")).status_code == 403

    async def test_roles_add_up(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        client_as: UserClientFactory,
        clusters: tuple[int, int],
    ) -> None:
        app.include_router(probe)
        first, _ = clusters
        await self._role(client, "C1_OPERATOR", [f"CLUSTER:{first}:UPDATE"])
        both = await client_as("C1_OPERATOR", "TASK_MANAGER")
        assert (await both.post(f"/api/v2/test-probe/clusters/{first}/update")).status_code == 200
        assert (await both.post("/api/v2/test-probe/tasks/retry")).status_code == 200
        assert (await both.get(f"/api/v2/ob/clusters/{first}")).status_code == 403

    async def test_malformed_cluster_id(
        self, app: FastAPI, client_as: UserClientFactory, clusters: tuple[int, int]
    ) -> None:
        # Read strictly before any permission decision (api/params.py): a 400 for everyone.
        viewer = await client_as("CLUSTER_VIEWER")
        nobody = await client_as("PROFILE")
        assert (await viewer.get("/api/v2/ob/clusters/abc")).status_code == 400
        assert (await nobody.get("/api/v2/ob/clusters/abc")).status_code == 400
