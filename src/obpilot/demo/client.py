"""The demo's HTTP client of the API: what a user would send with curl (standard library
only, so `obpilot demo` needs nothing beyond obpilot's own dependencies)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
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

    def _call(
        self,
        method: str,
        path: str,
        body: Json | None,
        *,
        upload: Path | None = None,
        timeout: float = 60,
    ) -> tuple[int, Json]:
        url = self.base_url + path  # http:// only (checked above)
        data: bytes | Iterator[bytes] | None = None
        headers = {"Authorization": self._authorization}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif upload is not None:
            data, headers["Content-Type"], length = _multipart(upload)
            headers["Content-Length"] = str(length)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with self._opener.open(request, timeout=timeout) as response:
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

    async def upload(self, path: str, file: Path) -> tuple[int, Json]:
        """POSTs `file` as the multipart field `file` (streamed from disk)."""
        return await asyncio.to_thread(self._call, "POST", path, None, upload=file, timeout=600)

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

    async def wait_task(
        self,
        task_id: int,
        *,
        within: float = 600.0,
        progress: Callable[[Json], None] | None = None,
    ) -> Json:
        """Polls the task until it is no longer RUNNING (`progress` sees every poll)."""
        deadline = time.monotonic() + within
        while True:
            task: Json = await self.data("GET", f"/api/v2/tasks/instances/{task_id}")
            if progress is not None:
                progress(task)
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


def _multipart(file: Path) -> tuple[Iterator[bytes], str, int]:
    """The body (in chunks), content type and length of a form with one file field."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk
        yield tail

    length = len(head) + file.stat().st_size + len(tail)
    return chunks(), f"multipart/form-data; boundary={boundary}", length


class TaskProgress:
    """Says each step of a task once it has ended, numbered: the subtasks of one name (the
    same step on several servers) together, without the engine's "Wait node" joins."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._told: set[str] = set()

    def __call__(self, task: Json) -> None:
        steps: dict[str, list[str]] = {}
        for subtask in task.get("subtasks", []):
            if subtask["name"] != "Wait node":
                steps.setdefault(subtask["name"], []).append(subtask["status"])
        for number, (name, statuses) in enumerate(steps.items(), 1):
            if name in self._told or not all(status in ENDED for status in statuses):
                continue
            self._told.add(name)
            failed = statuses.count("FAILED")
            outcome = f"{failed} of {len(statuses)} failed" if failed else "done"
            times = f" (x{len(statuses)})" if len(statuses) > 1 else ""
            self._say(f"  [{number}/{len(steps)}] {name}{times}: {outcome}")


ENDED = ("SUCCESSFUL", "FAILED")
