"""The demo's HTTP client of the API: what a user would send with curl (standard library
only, so `obpilot demo` needs nothing beyond obpilot's own dependencies)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

Json = dict[str, Any]


class DemoError(Exception):
    """Why the demo cannot go on, in words for the user."""


class ApiClient:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        if not base_url.startswith("http://"):
            raise ValueError(f"the demo talks plain HTTP to this machine, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._authorization = f"Basic {token}"
        # Talk to this machine directly, whatever proxy the environment names.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: Json | None) -> tuple[int, Json]:
        data = json.dumps(body).encode() if body is not None else None
        url = self.base_url + path  # http:// only (checked above)
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", self._authorization)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=60) as response:
                return int(response.status), json.load(response)
        except urllib.error.HTTPError as error:
            try:
                return int(error.code), json.load(error)
            except ValueError:
                return int(error.code), {"error": {"message": error.reason}}
        except (urllib.error.URLError, OSError) as error:
            raise DemoError(f"{method} {path}: the API did not answer: {error}") from None

    async def call(self, method: str, path: str, body: Json | None = None) -> tuple[int, Json]:
        return await asyncio.to_thread(self._call, method, path, body)

    async def data(self, method: str, path: str, body: Json | None = None) -> Any:
        """The answer's `data`; an error answer becomes a DemoError quoting its message."""
        status, answer = await self.call(method, path, body)
        if status != 200 or not answer.get("successful"):
            error = answer.get("error") or {}
            raise DemoError(
                f"{method} {path} answered {status} {error.get('code', '')}: "
                f"{error.get('message', answer)}"
            )
        return answer.get("data")

    async def wait_task(self, task_id: int, *, within: float = 600.0) -> Json:
        """Polls the task until it is no longer RUNNING."""
        deadline = time.monotonic() + within
        while True:
            task: Json = await self.data("GET", f"/api/v2/tasks/instances/{task_id}")
            if task["status"] != "RUNNING":
                return task
            if time.monotonic() > deadline:
                raise DemoError(f"task {task_id} ({task['name']}) still runs after {within:.0f} s")
            await asyncio.sleep(0.3)


def failures(task: Json) -> str:
    """The failed subtasks of a task, one per line."""
    return "\n".join(
        f"  {s['name']}: {s.get('errorMessage') or 'failed'}"
        for s in task.get("subtasks", [])
        if s["status"] == "FAILED"
    )
