"""Helpers of the lifecycle tests: request bodies, task polling as field clients poll,
SQL on a created server."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pymysql

PASSWORD = "Hello1234!"


def cluster_body(name: str, host_id: int, rpm: str, base: Path, ports: list[int]) -> dict[str, Any]:
    return {
        "name": name,
        "rpmName": rpm,
        "type": "PRIMARY",
        "password": PASSWORD,
        "zones": [
            {
                "name": f"zone{index + 1}",
                "servers": [
                    {"hostId": host_id, "sqlPort": port, "homePath": str(base / f"s{port}")}
                ],
            }
            for index, port in enumerate(ports)
        ],
    }


def wait_task(client: httpx.Client, task_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/api/v2/tasks/{task_id}").json()["data"]
        if task["status"] in ("SUCCESSFUL", "FAILED"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not end")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_sql(port: int, *statements: str) -> list[Any]:
    connection = pymysql.connect(
        host="127.0.0.1", port=port, user="root", password=PASSWORD, autocommit=True
    )
    try:
        with connection.cursor() as cursor:
            rows: list[Any] = []
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall())
            return rows
    finally:
        connection.close()


def failed_logs(client: httpx.Client, task: dict[str, Any]) -> str:
    """The logs of a task's failed subtasks: what an assertion on its status shows."""
    return "\n".join(
        client.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{s['id']}/log").json()["data"][
            "log"
        ]
        for s in task["subtasks"]
        if s["status"] == "FAILED"
    )


def stop_leftover_servers(client: httpx.Client) -> None:
    """Stops, by pid, every server process of the clusters still registered (a test that
    failed half way leaves its cluster behind): the pid in the server's pid file, if that
    process runs from the server's home."""
    clusters = client.get("/api/v2/ob/clusters").json()["data"]["contents"]
    homes = [
        server["homePath"]
        for summary in clusters
        for zone in client.get(f"/api/v2/ob/clusters/{summary['id']}").json()["data"]["zones"]
        for server in zone["servers"]
    ]
    pids = [pid for home in homes if (pid := _server_pid(Path(home))) is not None]
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        time.sleep(0.1)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _server_pid(home: Path) -> int | None:
    for name in ("run/seekdb.pid", "run/observer.pid"):
        try:
            pid = int((home / name).read_text().strip())
            if Path(f"/proc/{pid}/cwd").resolve() == home.resolve():
                return pid
        except (OSError, ValueError):
            continue
    return None
