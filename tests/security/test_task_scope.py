"""Finding 3: a task that belongs to a cluster is that cluster's business. Before, a user
with `CLUSTER:2:READ` and `TASK:*:READ` read cluster 1's tasks, logs and stream, and a
TASK_MANAGER cancelled, rolled back and retried tasks of clusters it could not even read."""

from __future__ import annotations

import httpx

from obpilot.db.engine import Database
from obpilot.engine import Context, Template, single
from tests.conftest import UserClientFactory
from tests.support.engine_tasks import (
    Cooperative,
    Flaky,
    Noop,
    snapshot,
    submit_task,
    wait_for,
    wait_task,
)
from tests.support.inventory import add_cluster, add_local_host

BASE = "/api/v2/tasks/instances"
FAILING = Template(
    key="test.security-failing", name="Failing", stages=[single(Noop), single(Flaky)]
)
WAITING = Template(key="test.security-waiting", name="Waiting", stages=[single(Cooperative)])


def refused(response: httpx.Response, code: str = "IAM11000") -> None:
    body = response.json()
    assert (response.status_code, body["error"]["code"]) == (403, code), body


async def _role(client: httpx.AsyncClient, name: str, *permissions: str) -> None:
    response = await client.post(
        "/api/v2/iam/roles", json={"name": name, "permissions": permissions}
    )
    assert response.status_code == 200, response.text


async def test_tasks_are_seen_and_operated_only_with_their_cluster(
    client: httpx.AsyncClient, database: Database, client_as: UserClientFactory
) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        one = await add_cluster(session, host, name="one", zones=1)
        two = await add_cluster(session, host, name="two", zones=1, first_port=31000)
    failing = Context.of({"fail_until_run": 99})
    task_one = await submit_task(database, FAILING, failing, cluster_id=one.id, cluster_name="one")
    task_two = await submit_task(database, FAILING, failing, cluster_id=two.id, cluster_name="two")
    loose = await submit_task(database, FAILING, failing)  # belongs to no cluster
    running = await submit_task(database, WAITING, Context(), cluster_id=one.id, cluster_name="one")
    for task_id in (task_one, task_two, loose):
        await wait_task(database, task_id, "FAILED")
    _, subtasks = await wait_for(
        database, running, lambda _t, s: s[0].status == "RUNNING", what="running"
    )
    waiting_subtask = subtasks[0].id
    _, one_subtasks = await snapshot(database, task_one)
    flaky_one = one_subtasks[1].id

    await _role(client, "READ_TWO", f"CLUSTER:{two.id}:READ", "TASK:*:READ")
    reader = await client_as("READ_TWO")
    listed = (await reader.get(BASE)).json()["data"]
    assert sorted(t["id"] for t in listed["contents"]) == sorted([task_two, loose])
    assert listed["page"]["totalElements"] == 2
    one_only = (await reader.get(BASE, params={"clusterId": one.id})).json()["data"]
    assert one_only["contents"] == []
    refused(await reader.get(f"{BASE}/{task_one}"))
    refused(await reader.get(f"{BASE}/{task_one}/subtasks/{flaky_one}"))
    refused(await reader.get(f"{BASE}/{task_one}/subtasks/{flaky_one}/log"))
    refused(await reader.get(f"{BASE}/{task_one}/stream"))
    assert (await reader.get(f"{BASE}/{task_two}")).status_code == 200
    assert (await reader.get(f"{BASE}/{loose}")).status_code == 200

    task_manager = await client_as("TASK_MANAGER")
    refused(await task_manager.post(f"{BASE}/{running}/subtasks/{waiting_subtask}/cancel"))
    refused(await task_manager.post(f"{BASE}/{task_one}/rollback"))
    refused(await task_manager.post(f"{BASE}/{task_one}/retry"))
    refused(await task_manager.post(f"{BASE}/{task_one}/subtasks/{flaky_one}/retry"))
    refused(await task_manager.post(f"{BASE}/{task_one}/subtasks/{flaky_one}/skip"))

    # Reading the cluster is not enough to act on its tasks.
    await _role(client, "READ_ONE_TASKS", f"CLUSTER:{one.id}:READ", "TASK:*:*")
    one_reader = await client_as("READ_ONE_TASKS")
    assert (await one_reader.get(f"{BASE}/{task_one}")).status_code == 200
    refused(await one_reader.post(f"{BASE}/{task_one}/retry"), "OBE11065")
    refused(
        await one_reader.post(f"{BASE}/{running}/subtasks/{waiting_subtask}/cancel"), "OBE11065"
    )

    # Nothing the refused calls asked for happened.
    task, subtasks = await snapshot(database, running)
    assert (task.status, subtasks[0].status, subtasks[0].operation) == (
        "RUNNING",
        "RUNNING",
        "EXECUTE",
    )
    task, subtasks = await snapshot(database, task_one)
    assert (task.status, task.operation, subtasks[1].run_time) == ("FAILED", "EXECUTE", 1)

    # With UPDATE on the cluster, the task manager acts.
    await _role(client, "OPERATE_ONE", f"CLUSTER:{one.id}:READ", f"CLUSTER:{one.id}:UPDATE")
    operator = await client_as("OPERATE_ONE", "TASK_MANAGER")
    cancelled = await operator.post(f"{BASE}/{running}/subtasks/{waiting_subtask}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    await wait_task(database, running, "FAILED")
    retried = await operator.post(f"{BASE}/{task_one}/retry")
    assert retried.status_code == 200, retried.text
