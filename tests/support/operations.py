"""Following operations through the HTTP API, as a client would."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

Json = dict[str, Any]


async def task_of(client: httpx.AsyncClient, task_id: int) -> Json:
    response = await client.get(f"/api/v2/tasks/instances/{task_id}")
    assert response.status_code == 200, response.text
    task: Json = response.json()["data"]
    return task


async def wait_task(client: httpx.AsyncClient, task_id: int, *, within: float = 180) -> Json:
    """Polls the task until it is no longer RUNNING and returns it."""
    async with asyncio.timeout(within):
        while True:
            task = await task_of(client, task_id)
            if task["status"] != "RUNNING":
                return task
            await asyncio.sleep(0.1)


async def wait_subtask(
    client: httpx.AsyncClient, task_id: int, name: str, status: str, *, within: float = 120
) -> Json:
    """Waits until some subtask called `name` has `status`."""
    async with asyncio.timeout(within):
        while True:
            for subtask in (await task_of(client, task_id))["subtasks"]:
                if subtask["name"] == name and subtask["status"] == status:
                    return dict(subtask)
            await asyncio.sleep(0.05)


async def cluster_view(client: httpx.AsyncClient, cluster_id: int) -> Json:
    response = await client.get(f"/api/v2/ob/clusters/{cluster_id}")
    assert response.status_code == 200, response.text
    view: Json = response.json()["data"]
    return view


def server_statuses(view: Json) -> dict[str, str]:
    return {z["name"]: ",".join(s["status"] for s in z["servers"]) for z in view["zones"]}
