"""The task center over HTTP: list and filters, the full task, subtasks and logs, OCP's
operations and their refusals, permissions, and the event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from obpilot.db.engine import Database
from obpilot.engine import Context, Template, parallel, single
from obpilot.engine.notifier import NOTIFIER
from tests.conftest import UserClientFactory
from tests.support.engine_tasks import (
    SEED_STOP,
    Chatty,
    Cooperative,
    Flaky,
    Gate,
    Noop,
    Permanent,
    seed_context,
    submit_task,
    wait_for,
    wait_task,
)

BASE = "/api/v2/tasks/instances"
FLAKY_CHAIN = Template(
    key="test.http-flaky", name="Flaky chain", stages=[single(Noop), single(Flaky), single(Noop)]
)


def data(response: httpx.Response, status: int = 200) -> Any:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] == status
    return body.get("data")


def error(response: httpx.Response, status: int, code: str) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["successful"] is False
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def only(name: str) -> Callable[[Any, Any], bool]:
    return lambda _t, s: any(x.name == name and x.status == "RUNNING" for x in s)


async def test_list_filters_pages_and_sorts(client: httpx.AsyncClient, database: Database) -> None:
    first = await submit_task(
        database, SEED_STOP, seed_context(), cluster_id=21, cluster_name="ob_upgrade"
    )
    second = await submit_task(
        database, FLAKY_CHAIN, Context.of({"fail_until_run": 9}), cluster_id=7, cluster_name="ob7"
    )
    await wait_task(database, first, "SUCCESSFUL")
    await wait_task(database, second, "FAILED")

    listed = data(await client.get(BASE))
    assert [t["id"] for t in listed["contents"]] == [second, first]  # newest first
    assert listed["page"] == {"totalElements": 2, "totalPages": 1, "number": 1, "size": 20}
    item = listed["contents"][1]
    assert item["cluster"] == {"id": 21, "name": "ob_upgrade", "obClusterId": None}
    assert item["creator"] == {"id": 1, "name": "admin"}
    assert {"id", "name", "description", "status", "operation"} == set(item["subtasks"][0])

    async def query(**params: Any) -> list[int]:
        return [t["id"] for t in data(await client.get(BASE, params=params))["contents"]]

    assert await query(name="stop ob") == [first]
    assert await query(status="FAILED") == [second]
    assert await query(status=["FAILED", "SUCCESSFUL"]) == [second, first]
    assert await query(type="MANUAL") == [second, first]
    assert await query(type="SCHEDULED") == []
    assert await query(clusterId=7) == [second]
    assert await query(clusterName="UPGRADE") == [first]
    assert await query(cluterName="ob7") == [second]
    assert await query(sort="id,asc") == [first, second]
    assert await query(sort="name,desc") == [first, second]
    paged = data(await client.get(BASE, params={"size": 1, "page": 2, "sort": "id,asc"}))
    assert [t["id"] for t in paged["contents"]] == [second]
    assert paged["page"] == {"totalElements": 2, "totalPages": 2, "number": 2, "size": 1}

    assert "sorting" in error(await client.get(BASE, params={"sort": "bogus"}), 400, "COM10011")
    error(await client.get(BASE, params={"status": "DONE"}), 400, "COM10001")
    error(await client.get(BASE, params={"size": 2001}), 400, "COM10001")
    error(await client.get(BASE, params={"clusterId": 0}), 400, "COM10001")


async def test_get_a_task_a_subtask_and_its_log(
    client: httpx.AsyncClient, database: Database
) -> None:
    task_id = await submit_task(database, SEED_STOP, seed_context(), cluster_id=21)
    await wait_task(database, task_id, "SUCCESSFUL")
    task = data(await client.get(f"{BASE}/{task_id}"))
    assert task["status"] == "SUCCESSFUL"
    assert len(task["subtasks"]) == 11
    first = task["subtasks"][0]
    subtask = data(await client.get(f"{BASE}/{task_id}/subtasks/{first['id']}"))
    assert subtask == first
    log = data(await client.get(f"{BASE}/{task_id}/subtasks/{first['id']}/log"))["log"]
    assert log.startswith("{EXECUTE}{")
    assert "finished successfully" in log

    assert "Task 999999 does not exist" in error(
        await client.get(f"{BASE}/999999"), 404, "TSK10001"
    )
    other = await submit_task(database, SEED_STOP, seed_context())
    for path in (f"{BASE}/{other}/subtasks/{first['id']}", f"{BASE}/{task_id}/subtasks/99999"):
        error(await client.get(path), 404, "TSK10001")
        error(await client.get(path + "/log"), 404, "TSK10001")
    error(await client.get(f"{BASE}/0"), 400, "COM10001")
    error(await client.get(f"{BASE}/abc"), 400, "COM10001")


async def test_retry_skip_and_rollback_over_http(
    client: httpx.AsyncClient, database: Database
) -> None:
    task_id = await submit_task(database, FLAKY_CHAIN, Context.of({"fail_until_run": 3}))
    _, subtasks = await wait_task(database, task_id, "FAILED")
    flaky = subtasks[1].id

    retried = data(await client.post(f"{BASE}/{task_id}/retry"))
    assert (retried["status"], retried["operation"]) == ("RUNNING", "RETRY")
    assert retried["subtasks"][1]["runTime"] == 2
    await wait_for(database, task_id, lambda t, s: t.status == "FAILED" and s[1].run_time == 2)

    again = data(await client.post(f"{BASE}/{task_id}/subtasks/{flaky}/retry"))
    assert (again["status"], again["operation"], again["runTime"]) == ("READY", "RETRY", 3)
    await wait_task(database, task_id, "SUCCESSFUL")

    message = error(await client.post(f"{BASE}/{task_id}/retry"), 400, "TSK10007")
    assert "state SUCCESSFUL" in message
    message = error(await client.post(f"{BASE}/{task_id}/subtasks/{flaky}/skip"), 400, "TSK10007")
    assert "state SUCCESSFUL" in message
    error(await client.post(f"{BASE}/{task_id}/subtasks/{flaky}/cancel"), 400, "TSK10007")
    error(await client.post(f"{BASE}/999999/rollback"), 404, "TSK10001")
    error(await client.post(f"{BASE}/{task_id}/subtasks/999999/skip"), 404, "TSK10001")

    skipped = await submit_task(database, FLAKY_CHAIN, Context.of({"fail_until_run": 9}))
    _, subtasks = await wait_task(database, skipped, "FAILED")
    response = await client.post(f"{BASE}/{skipped}/subtasks/{subtasks[1].id}/skip")
    assert data(response) is None
    assert "data" not in response.json()
    _, subtasks = await wait_task(database, skipped, "SUCCESSFUL")
    assert subtasks[1].operation == "SKIP"

    rolled = await submit_task(database, FLAKY_CHAIN, Context.of({"fail_until_run": 9}))
    await wait_task(database, rolled, "FAILED")
    answer = data(await client.post(f"{BASE}/{rolled}/rollback"))
    assert (answer["status"], answer["operation"]) == ("RUNNING", "ROLLBACK")
    task, subtasks = await wait_task(database, rolled, "SUCCESSFUL")
    assert task.operation == "ROLLBACK"
    assert {s.status for s in subtasks} == {"PENDING"}

    template = Template(
        key="test.http-prohibit", name="P", stages=[single(Permanent), single(Flaky)]
    )
    prohibited = await submit_task(database, template, Context.of({"fail_until_run": 9}))
    await wait_task(database, prohibited, "FAILED")
    assert data(await client.get(f"{BASE}/{prohibited}"))["prohibitRollback"] is True
    message = error(await client.post(f"{BASE}/{prohibited}/rollback"), 400, "TSK10009")
    assert "Permanent change" in message


async def test_cancel_over_http(client: httpx.AsyncClient, database: Database) -> None:
    task_id = await submit_task(
        database,
        Template(key="test.http-cancel", name="Cancel", stages=[single(Cooperative)]),
        Context(),
    )
    _, subtasks = await wait_for(database, task_id, only("Cooperative"))
    response = await client.post(f"{BASE}/{task_id}/subtasks/{subtasks[0].id}/cancel")
    assert data(response) is None
    _, subtasks = await wait_task(database, task_id, "FAILED")
    assert subtasks[0].error_code == "TSK10014"
    subtask = data(await client.get(f"{BASE}/{task_id}/subtasks/{subtasks[0].id}"))
    assert subtask["errorCode"] == "TSK10014"
    assert subtask["operation"] == "CANCEL"


async def test_reading_needs_task_read_and_operating_needs_task_update(
    client: httpx.AsyncClient, database: Database, client_as: UserClientFactory
) -> None:
    task_id = await submit_task(database, FLAKY_CHAIN, Context.of({"fail_until_run": 9}))
    await wait_task(database, task_id, "FAILED")
    hosts_only = await client_as("HOST_VIEWER")
    error(await hosts_only.get(BASE), 403, "IAM11000")
    error(await hosts_only.get(f"{BASE}/{task_id}/stream"), 403, "IAM11000")
    viewer = await client_as("CLUSTER_VIEWER")
    assert data(await viewer.get(f"{BASE}/{task_id}"))["status"] == "FAILED"
    error(await viewer.post(f"{BASE}/{task_id}/retry"), 403, "IAM11000")
    error(await viewer.post(f"{BASE}/{task_id}/rollback"), 403, "IAM11000")
    manager = await client_as("TASK_MANAGER")
    assert data(await manager.post(f"{BASE}/{task_id}/retry"))["operation"] == "RETRY"
    error(await client.get(BASE, auth=None), 401, "IAM10000")


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    parsed = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


async def test_the_stream_follows_a_task_to_its_end(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    template = Template(
        key="test.http-stream",
        name="Stream",
        stages=[single(Gate), parallel(Chatty, over="items"), single(Noop)],
    )
    gate = tmp_path / "gate"
    context = Context.of(
        {"gate_file": gate, "log_lines": 3, "line_interval": 0.05}, {"items": [1, 2]}
    )
    task_id = await submit_task(database, template, context)
    listeners = len(NOTIFIER._listeners)

    async def follow() -> httpx.Response:
        return await client.get(f"{BASE}/{task_id}/stream")

    following = asyncio.create_task(follow())
    while len(NOTIFIER._listeners) == listeners:  # noqa: ASYNC110 (waits for the stream)
        await asyncio.sleep(0.01)
    # The stream has subscribed, so it sees everything from here on: open the gate.
    gate.touch()
    response = await asyncio.wait_for(following, 30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    seen = events(response.text)
    assert seen[0][0] == "task"
    snapshot = {s["id"]: s for s in seen[0][1]["subtasks"]}
    assert len(snapshot) == 4
    ended = {"id": task_id, "name": "Stream", "status": "SUCCESSFUL", "operation": "EXECUTE"}
    assert seen[-1] == ("end", ended)
    assert ("task", ended) in seen
    chatty = [i for i, s in snapshot.items() if s["name"] == "Chatty"]
    assert all(snapshot[i]["status"] == "PENDING" for i in chatty)
    for subtask_id in chatty:
        changes = [e["status"] for kind, e in seen if kind == "subtask" and e["id"] == subtask_id]
        assert changes[-1] == "SUCCESSFUL"
        assert "RUNNING" in changes
        lines = [e["line"] for kind, e in seen if kind == "log" and e["subtaskId"] == subtask_id]
        assert lines[0].startswith("{EXECUTE}{")
        assert [line.split(" ", 1)[1] for line in lines[1:4]] == ["line 0", "line 1", "line 2"]
        assert "finished successfully" in lines[-1]


async def test_the_stream_of_an_ended_task_and_of_no_task(
    client: httpx.AsyncClient, database: Database
) -> None:
    task_id = await submit_task(database, SEED_STOP, seed_context())
    await wait_task(database, task_id, "SUCCESSFUL")
    response = await client.get(f"{BASE}/{task_id}/stream")
    seen = events(response.text)
    kinds = [kind for kind, _ in seen]
    assert kinds[0] == "task"
    assert kinds[-1] == "end"
    assert set(kinds[1:-1]) == {"log"}  # the log so far: 11 headers and 11 last lines
    assert len(kinds) == 2 + 22
    ids = [
        int(line.split(": ")[1]) for line in response.text.splitlines() if line.startswith("id:")
    ]
    resumed = await client.get(f"{BASE}/{task_id}/stream", headers={"Last-Event-ID": str(ids[9])})
    assert len([kind for kind, _ in events(resumed.text) if kind == "log"]) == 22 - 10
    error(await client.get(f"{BASE}/424242/stream"), 404, "TSK10001")
