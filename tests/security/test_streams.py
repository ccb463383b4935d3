"""Finding 7 (streams): task streams are capped per user and per instance, share one
reader per task, and refuse an overflowing Last-Event-ID before they open. Before, one
user's 200 idle streams each polled the metadb and used a whole core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from obpilot.db.engine import Database
from obpilot.engine import Context, Template, single
from obpilot.tasks.stream import StreamHub
from tests.conftest import UserClientFactory
from tests.support.engine_tasks import Cooperative, submit_task, wait_for

WAITING = Template(key="test.stream-waiting", name="Waiting", stages=[single(Cooperative)])
BASE = "/api/v2/tasks/instances"


async def _first_event(stream: AsyncIterator[str]) -> str:
    return await asyncio.wait_for(anext(stream), 10)


async def test_streams_are_capped_per_user_and_per_instance_and_share_one_reader(
    app: FastAPI, client: httpx.AsyncClient, database: Database, client_as: UserClientFactory
) -> None:
    task_id = await submit_task(database, WAITING, Context())
    await wait_for(database, task_id, lambda _t, s: s[0].status == "RUNNING", what="running")
    hub: StreamHub = app.state.stream_hub
    hub.per_user, hub.per_instance = 2, 3
    admin_id = (await client.get("/api/v2/iam/users/me")).json()["data"]["id"]
    opened = [hub.follow(task_id, user_id=admin_id) for _ in range(2)]
    for stream in opened:
        assert (await _first_event(stream)).startswith("event: task")
    assert (hub.open_streams, hub.watched_tasks) == (2, 1)

    refused = await client.get(f"{BASE}/{task_id}/stream")
    body = refused.json()
    assert (refused.status_code, body["error"]["code"]) == (429, "COM10429"), body
    assert "2 task stream(s)" in body["error"]["message"]

    viewer = await client_as("CLUSTER_VIEWER")
    viewer_id = (await viewer.get("/api/v2/iam/users/me")).json()["data"]["id"]
    third = hub.follow(task_id, user_id=viewer_id)
    assert (await _first_event(third)).startswith("event: task")
    assert (hub.open_streams, hub.watched_tasks) == (3, 1)  # still one reader for the task
    full = await viewer.get(f"{BASE}/{task_id}/stream")
    assert full.status_code == 429
    assert "serves 3 task streams" in full.json()["error"]["message"]

    for stream in [*opened, third]:
        await stream.aclose()
    assert (hub.open_streams, hub.watched_tasks) == (0, 0)


async def test_viewers_of_one_task_are_woken_by_its_one_reader(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    task_id = await submit_task(database, WAITING, Context())
    _, subtasks = await wait_for(
        database, task_id, lambda _t, s: s[0].status == "RUNNING", what="running"
    )
    hub: StreamHub = app.state.stream_hub
    viewers = [hub.follow(task_id, user_id=1) for _ in range(3)]
    for stream in viewers:
        while not (await _first_event(stream)).startswith("event: task"):
            pass
    cancel = await client.post(f"{BASE}/{task_id}/subtasks/{subtasks[0].id}/cancel")
    assert cancel.status_code == 200, cancel.text
    for stream in viewers:
        seen = ""
        while "event: end" not in seen:
            seen += await _first_event(stream)
        assert '"status":"FAILED"' in seen
        await stream.aclose()
    assert hub.watched_tasks == 0


async def test_an_overflowing_last_event_id_is_refused_before_the_stream_opens(
    client: httpx.AsyncClient, database: Database
) -> None:
    task_id = await submit_task(database, WAITING, Context())
    for value in ("99999999999999999999999", "9223372036854775808", "-1", "x"):
        response = await client.get(f"{BASE}/{task_id}/stream", headers={"Last-Event-ID": value})
        body = response.json()
        assert (response.status_code, body["error"]["code"]) == (400, "COM10001"), body
    running = await client.get(f"{BASE}/{task_id}")
    subtask_id = running.json()["data"]["subtasks"][0]["id"]
    await client.post(f"{BASE}/{task_id}/subtasks/{subtask_id}/cancel")
