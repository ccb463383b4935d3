"""Limits of a real `obpilot serve`: connections that do not send a whole request head in
time are closed, a huge declared body is refused unread, and the SQLite metadb is private."""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess

HEAD_TIMEOUT = 1.0
MARGIN = 2.0
PARTIAL_HEAD = b"GET /api/v2/info HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    previous = os.umask(0o022)  # what most systems give: files readable by all
    try:
        process = ServerProcess(
            tmp_path_factory.mktemp("limits") / "home",
            env={"OBPILOT_HEADER_READ_TIMEOUT_SECONDS": str(HEAD_TIMEOUT)},
        ).start()
    finally:
        os.umask(previous)
    yield process
    process.stop()


def connect(server: ServerProcess) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    connection.settimeout(HEAD_TIMEOUT + MARGIN + 5)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """All the server sends until it closes the connection (a timeout fails the test)."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def read_response(connection: socket.socket) -> bytes:
    """One whole response (with a Content-Length) off a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("sent", [PARTIAL_HEAD, b""], ids=["partial head", "silent"])
def test_a_connection_without_a_whole_head_is_closed(server: ServerProcess, sent: bytes) -> None:
    with connect(server) as connection:
        started = time.monotonic()
        connection.sendall(sent)
        assert read_until_closed(connection) == b""
        elapsed = time.monotonic() - started
    assert HEAD_TIMEOUT * 0.8 <= elapsed <= HEAD_TIMEOUT + MARGIN


def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(
    server: ServerProcess,
) -> None:
    with connect(server) as connection:
        connection.sendall(PARTIAL_HEAD)
        time.sleep(HEAD_TIMEOUT / 2)
        connection.sendall(b"\r\n")  # the head is complete in time: answered
        assert read_response(connection).startswith(b"HTTP/1.1 200 ")
        time.sleep(HEAD_TIMEOUT / 2)  # idle, within uvicorn's keep-alive timeout
        started = time.monotonic()
        connection.sendall(PARTIAL_HEAD)
        assert read_until_closed(connection) == b""
        assert time.monotonic() - started <= HEAD_TIMEOUT + MARGIN


def test_a_huge_declared_body_is_refused_unread(server: ServerProcess) -> None:
    head = (
        b"POST /api/v2/compute/hosts HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 209715200\r\n\r\n{"
    )
    with connect(server) as connection:
        connection.sendall(head)
        answer = read_until_closed(connection)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 "), answer
    assert b"connection: close" in rest.lower()
    assert b'"COM10413"' in rest


def test_the_sqlite_metadb_is_private(server: ServerProcess) -> None:
    answer = httpx.post(
        server.base_url + "/api/v2/iam/accessKeys", auth=("admin", ADMIN_PASSWORD), timeout=10
    )
    assert answer.status_code == 200, answer.text
    files = [server.home / name for name in ("obpilot.db", "obpilot.db-wal", "obpilot.db-shm")]
    modes = {file.name: oct(stat.S_IMODE(file.stat().st_mode)) for file in files}
    assert modes == {file.name: "0o600" for file in files}
