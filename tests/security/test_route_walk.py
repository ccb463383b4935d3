"""Finding 8: every route that acts on a cluster, or on a task of a cluster, walked from the
permission table with a user who holds everything on another cluster only, and with one who
holds nothing on any cluster: each call is refused with 403 and nothing changes."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from obpilot.db.engine import Database
from obpilot.engine import Context, Template, single
from obpilot.engine import repository as repo
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.iam.permissions import ROUTE_PERMISSIONS
from obpilot.inventory.models import Cluster, Server, Zone
from tests.conftest import UserClientFactory
from tests.support.engine_tasks import Flaky, Noop, submit_task, wait_task
from tests.support.inventory import add_cluster, add_local_host

FAILING = Template(key="test.walk-failing", name="Failing", stages=[single(Noop), single(Flaky)])
LISTS = {("GET", "/api/v2/ob/clusters"), ("GET", "/api/v2/tasks/instances")}


def scoped_routes() -> list[tuple[str, str]]:
    """The routes whose permission names a cluster in the path or a task's cluster."""
    return sorted(
        route
        for route, needed in ROUTE_PERMISSIONS.items()
        if ("CLUSTER:{id}" in needed or "CLUSTER:{task}" in needed) and route not in LISTS
    )


async def _everything(database: Database) -> list[tuple[object, ...]]:
    """Every row a refused call could have changed, with its version or update time."""
    async with database.transaction() as session:
        rows: list[tuple[object, ...]] = []
        for model in (Cluster, Zone, Server):
            for row in await session.scalars(select(model).order_by(model.id)):
                rows.append((model.__name__, row.id, row.status, row.update_time))
        for task in await session.scalars(select(TaskInstance).order_by(TaskInstance.id)):
            rows.append(("task", task.id, task.status, task.operation, task.version))
        for sub in await session.scalars(select(SubtaskInstance).order_by(SubtaskInstance.id)):
            rows.append(("subtask", sub.id, sub.status, sub.operation, sub.version, sub.run_time))
        return rows


async def test_every_cluster_scoped_route_refuses_other_and_no_cluster_users(
    client: httpx.AsyncClient, database: Database, client_as: UserClientFactory
) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        target = await add_cluster(session, host, name="target", zones=1)
        other = await add_cluster(session, host, name="other", zones=1, first_port=31000)
        server_id = await session.scalar(select(Server.id).where(Server.cluster_id == target.id))
    task_id = await submit_task(
        database, FAILING, Context.of({"fail_until_run": 99}), cluster_id=target.id
    )
    _, subtasks = await wait_task(database, task_id, "FAILED")
    values = {
        "id": str(target.id),
        "zoneName": "zone1",
        "serverId": str(server_id),
        "sid": str(subtasks[1].id),
        "accessKeyId": "x",
    }
    for name, permissions in (
        ("ELSEWHERE", [f"CLUSTER:{other.id}:*", "TASK:*:*", "HOST:*:*"]),
        ("NOWHERE", ["TASK:*:*", "HOST:*:*"]),
    ):
        response = await client.post(
            "/api/v2/iam/roles", json={"name": name, "permissions": permissions}
        )
        assert response.status_code == 200, response.text
    before = await _everything(database)
    walked = 0
    for role in ("ELSEWHERE", "NOWHERE"):
        caller = await client_as(role)
        for method, template in scoped_routes():
            fill = values
            if template.startswith("/api/v2/tasks/"):
                fill = {**values, "id": str(task_id)}
            url = re.sub(r"\{(\w+)\}", lambda m, fill=fill: fill[m[1]], template)
            if method == "DELETE":
                url += "?keepProcesses=true"
            response = await caller.request(method, url)
            body = response.json()
            assert response.status_code == 403, (role, method, url, body)
            assert body["error"]["code"] in ("IAM11000", "OBE11065"), body
            walked += 1
        clusters = await caller.get("/api/v2/ob/clusters")
        if role == "ELSEWHERE":
            assert [c["id"] for c in clusters.json()["data"]["contents"]] == [other.id]
        else:
            assert clusters.status_code == 403
        tasks = (await caller.get("/api/v2/tasks/instances")).json()["data"]
        assert task_id not in [t["id"] for t in tasks["contents"]]
    assert walked == 2 * len(scoped_routes()) >= 2 * 20
    assert await _everything(database) == before
    async with database.transaction() as session:
        assert await repo.get_task(session, task_id) is not None
