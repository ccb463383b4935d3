"""A scripted OCP API on a real socket, for CLI commands whose server routes do not exist
yet: each (method, path) answers what the test set, every request is recorded, and AK/SK
signatures are checked by the server's own rules (`obpilot.iam.signatures`). Tasks answer
as done at once: GET gives the task, its stream one `end` event."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from obpilot.cli.profiles import Profile, ProfileStore
from obpilot.iam.signatures import (
    SCHEME,
    canonical_message,
    content_md5,
    parse_authorization,
    signature_matches,
)

ACCESS_KEY = ("AKFAKE0123456789", "fake-secret")
TASK_PATH = re.compile(r"^/api/v2/tasks/instances/(\d+)(/stream)?$")


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any]  # HTTP status and the envelope's data (or a whole error envelope)


def ok(data: Any) -> Answer:
    return 200, {"successful": True, "data": data, "traceId": "fa4e"}


def error(status: int, code: str, message: str, sub_errors: list[Any] | None = None) -> Answer:
    detail: dict[str, Any] = {"code": code, "message": message}
    if sub_errors is not None:
        detail["subErrors"] = sub_errors
    return status, {"successful": False, "error": detail, "traceId": "e77"}


def task(task_id: int, name: str, status: str = "SUCCESSFUL", **more: Any) -> dict[str, Any]:
    """A task in the shape `cluster stop` gets: two subtasks, in a row."""
    sub = "SUCCESSFUL" if status == "SUCCESSFUL" else status
    return {
        "id": task_id,
        "name": name,
        "status": status,
        "prohibitRollback": False,
        "subtasks": [
            {
                "id": task_id * 10 + 1,
                "name": "Prepare",
                "status": "SUCCESSFUL",
                "parallelIdx": -1,
                "upstreams": [],
            },
            {
                "id": task_id * 10 + 2,
                "name": "Act",
                "status": sub,
                "parallelIdx": -1,
                "upstreams": [task_id * 10 + 1],
                "errorMessage": None if sub == "SUCCESSFUL" else "it broke",
            },
        ],
        **more,
    }


@dataclass
class FakeApi:
    url: str = ""
    routes: dict[tuple[str, str], Callable[[Seen], Answer]] = field(default_factory=dict)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    signature_failures: list[str] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Answer | Callable[[Seen], Answer]) -> None:
        self.routes[(method, path)] = answer if callable(answer) else (lambda _seen: answer)

    def add_task(self, found: dict[str, Any]) -> dict[str, Any]:
        self.tasks[found["id"]] = found
        return found

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    def profile(self, config: Path) -> None:
        """A profile file whose current profile signs with the fake's access key."""
        store = ProfileStore.load(config)
        store.profiles["default"] = Profile(
            url=self.url, user="admin", access_key_id=ACCESS_KEY[0], access_key_secret=ACCESS_KEY[1]
        )
        store.current = "default"
        store.save()

    def answer(self, seen: Seen) -> tuple[int, Any, bool]:
        """(status, body, is_sse)."""
        matched = TASK_PATH.match(seen.path)
        if seen.method == "GET" and matched and int(matched[1]) in self.tasks:
            found = self.tasks[int(matched[1])]
            if matched[2]:
                return 200, {"id": found["id"], "status": found["status"]}, True
            return (*ok(found), False)
        if seen.method == "GET" and seen.path.endswith("/log"):
            return (*ok({"log": "line one\nline two\n"}), False)
        route = self.routes.get((seen.method, seen.path))
        if route is None:
            return (*error(404, "COM10404", f"no route {seen.method} {seen.path}"), False)
        return (*route(seen), False)


class _Handler(BaseHTTPRequestHandler):
    api: FakeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding"):
            self.api.signature_failures.append("a chunked body: no Content-Length")
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        seen = Seen(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self._check_signature(seen, parts.query)
        self.api.seen.append(seen)
        status, answer, sse = self.api.answer(seen)
        if sse:
            text = f"event: end\ndata: {json.dumps(answer)}\n\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            return
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Trace-Id", str(answer.get("traceId", "")))
        self.end_headers()
        self.wfile.write(payload)

    def _check_signature(self, seen: Seen, query: str) -> None:
        given = seen.headers.get("authorization", "")
        if not given.startswith(SCHEME):
            self.api.signature_failures.append(f"{seen.method} {seen.path}: not signed")
            return
        access_key_id, signature = parse_authorization(given)
        message = canonical_message(
            method=seen.method,
            body_md5=content_md5(seen.body),
            content_type=seen.headers.get("content-type", ""),
            date=seen.headers.get("date", ""),
            host=seen.headers.get("host", ""),
            headers=list(self.headers.items()),
            path=seen.path,
            query=query,
        )
        if access_key_id != ACCESS_KEY[0] or not signature_matches(
            ACCESS_KEY[1], message, signature
        ):
            self.api.signature_failures.append(f"{seen.method} {seen.path}: bad signature")

    do_GET = do_POST = do_DELETE = _handle


def serve() -> Iterator[FakeApi]:
    api = FakeApi()
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a kept-alive connection never holds the teardown
    server.block_on_close = False
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        assert not api.signature_failures, api.signature_failures
