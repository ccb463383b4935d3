"""Stop and start of real seekdb clusters through obpilot's API, next to a same-run
baseline, printed as JSON.

For clusters of 3 and 6 seekdb servers on this machine:
  * stop: the baseline sends the same clean-stop signal (SIGUSR1) to the same processes
    directly and waits for them to exit; obpilot is `POST .../stop` until the task is
    SUCCESSFUL (every process verified gone, statuses recorded);
  * start: the baseline launches the same binary with the same arguments and waits until
    each answers `SELECT 1`; obpilot is `POST .../start` until the task is SUCCESSFUL.
  Overhead target: at most 10 % or 300 ms over the baseline, whichever is larger.
And the stop call's own response time (from request to the task in the answer) over many
calls on SQLite, one at a time on an otherwise idle server; target p99 under 50 ms.

    .venv/bin/python bench/stop.py [--rounds 2] [--calls 200] [--sizes 3 6] [--smoke]

`--smoke` (what `make test` runs, tests/bench/): one cluster of 1 server, one round, 5
calls; the same code paths and JSON keys as a full run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.databases import seekdb_binary
from tests.support.fleet import Fleet, FleetServer, process_alive
from tests.support.inventory import add_cluster, add_local_host
from tests.support.server import ADMIN_PASSWORD, ServerProcess

import obpilot.schema  # noqa: F401  (every domain's table on the metadata, as the server has)
from obpilot.db.engine import Database
from obpilot.hosts.agent import lock_holder
from obpilot.hosts.drivers.seekdb import DEFAULT_PARAMETERS, LOG_LEVEL
from obpilot.logging import configure_logging


def _released(server: FleetServer) -> bool:
    """Gone as obpilot's stop verifies it: no pid-file lock holder, SQL port closed."""
    if lock_holder(str(server.home / "run" / "seekdb.pid")):
        return False
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", server.port)) != 0


async def _wait_gone(fleet: Fleet, pids: list[int]) -> None:
    async with asyncio.timeout(120):
        while True:
            if not any(process_alive(pid) for pid in pids) and all(
                _released(s) for s in fleet.servers
            ):
                return
            await asyncio.sleep(0.01)


async def baseline_stop(fleet: Fleet) -> float:
    pids = [(await fleet.status(s)).pid for s in fleet.servers]
    assert all(pids)
    started = time.perf_counter()
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)  # type: ignore[arg-type]
    await _wait_gone(fleet, [p for p in pids if p])
    return time.perf_counter() - started


async def baseline_start(fleet: Fleet) -> float:
    binary = str(seekdb_binary())
    environment = {**os.environ, "TELEMETRY_ENABLED": "false"}

    async def one(server: FleetServer) -> None:
        command = [binary, "--port", str(server.port), "--base-dir", str(server.home)]
        for name, value in DEFAULT_PARAMETERS.items():
            command += ["--parameter", f"{name}={value}"]
        command += ["--log-level", LOG_LEVEL]
        process = await asyncio.create_subprocess_exec(
            *command,
            env=environment,
            cwd=server.home,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()  # seekdb daemonises; the parent returns at once
        async with asyncio.timeout(120):
            await _until_sql(server)

    async def _until_sql(server: FleetServer) -> None:
        while True:
            if await asyncio.to_thread(server.answers_sql):
                return
            await asyncio.sleep(0.02)

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in fleet.servers))
    return time.perf_counter() - started


async def through_obpilot(client: httpx.AsyncClient, path: str) -> tuple[float, float]:
    """(seconds until the task is SUCCESSFUL, the call's own response time in ms)."""
    started = time.perf_counter()
    response = await client.post(path)
    answered = time.perf_counter()
    assert response.status_code == 200, response.text
    task = await _finished(client, response.json()["data"]["id"])
    assert task["status"] == "SUCCESSFUL", task
    return time.perf_counter() - started, (answered - started) * 1000


async def _finished(client: httpx.AsyncClient, task_id: int) -> dict[str, Any]:
    """The task once it has ended, followed as a console does: its event stream (the
    `end` event), then one read; no polling that would load the server meanwhile."""
    async with client.stream("GET", f"/api/v2/tasks/instances/{task_id}/stream") as events:
        async for line in events.aiter_lines():
            if line == "event: end":
                break
    task: dict[str, Any] = (await client.get(f"/api/v2/tasks/instances/{task_id}")).json()["data"]
    return task


def _verdict(baseline: list[float], measured: list[float]) -> dict[str, Any]:
    base, ours = statistics.median(baseline), statistics.median(measured)
    allowed = max(base * 0.10, 0.300)
    return {
        "baseline_s": [round(v, 3) for v in baseline],
        "obpilot_s": [round(v, 3) for v in measured],
        "baseline_median_s": round(base, 3),
        "obpilot_median_s": round(ours, 3),
        "overhead_s": round(ours - base, 3),
        "overhead_pct": round((ours - base) / base * 100, 1),
        "allowed_overhead_s": round(allowed, 3),
        "target_met": ours - base <= allowed,
    }


async def cluster_round(size: int, rounds: int, root: Path) -> dict[str, Any]:
    fleet = Fleet(root / f"fleet{size}", size)
    await fleet.ensure_running()
    server = ServerProcess(root / f"home{size}").start()
    database = Database(f"sqlite+aiosqlite:///{server.home / 'obpilot.db'}")
    try:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await fleet.register(session, host, name=f"bench{size}")
        stop_base, stop_ours, start_base, start_ours = [], [], [], []
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=120
        ) as client:
            for _ in range(rounds):
                stop_base.append(await baseline_stop(fleet))
                start_base.append(await baseline_start(fleet))
                stop_ours.append(
                    (await through_obpilot(client, f"/api/v2/ob/clusters/{cluster.id}/stop"))[0]
                )
                start_ours.append(
                    (await through_obpilot(client, f"/api/v2/ob/clusters/{cluster.id}/start"))[0]
                )
        return {"stop": _verdict(stop_base, stop_ours), "start": _verdict(start_base, start_ours)}
    finally:
        server.stop()
        await database.dispose()
        await fleet.stop_all()


@asynccontextmanager
async def _stop_call_server(
    root: Path, name: str, clusters: int
) -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    """A server on a SQLite metadb with `clusters` clusters whose one server has no process,
    so each task is cheap and the measurement is the API path (auth, lock, task insert,
    answer); and an admin client of it, its connection warmed up."""
    server = ServerProcess(root / name).start()
    database = Database(f"sqlite+aiosqlite:///{server.home / 'obpilot.db'}")
    try:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            ids = [
                (await add_cluster(session, host, name=f"c{i}", zones=1, first_port=20000 + i)).id
                for i in range(clusters)
            ]
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=60
        ) as client:
            # Warm-up: the connection, and the password verified once (concurrent first
            # calls would each count an attempt, and enough of them lock the account).
            assert (await client.get("/api/v2/iam/users/me")).status_code == 200
            yield client, ids
    finally:
        server.stop()
        await database.dispose()


async def _timed_stop(client: httpx.AsyncClient, cluster_id: int) -> tuple[float, int]:
    """(the stop call's response time in ms, its task's id)."""
    started = time.perf_counter()
    response = await client.post(f"/api/v2/ob/clusters/{cluster_id}/stop")
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed, int(response.json()["data"]["id"])


def _percentiles(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def stop_call_latency(calls: int, root: Path) -> dict[str, Any]:
    """The stop call alone, one at a time, each on an otherwise idle server (its task has
    finished before the next call): the call's own cost."""
    samples: list[float] = []
    async with _stop_call_server(root, "latency", calls) as (client, ids):
        for cluster_id in ids:
            elapsed, task_id = await _timed_stop(client, cluster_id)
            samples.append(elapsed)
            await _finished(client, task_id)
    result = _percentiles(samples)
    return {
        **result,
        "target_p99_ms": 50,
        "target_met": result["p99_ms"] < 50,
        "ocp_sample_ms": 107,
    }


async def stop_calls_back_to_back(calls: int, root: Path, clients: int = 8) -> dict[str, Any]:
    """The stop call under load: `clients` callers at once, each sending its next call on
    another cluster as soon as its last one is answered, while the tasks run. The time
    includes queueing behind SQLite's one writer (this process's and the workers')."""
    samples: list[float] = []
    async with _stop_call_server(root, "back-to-back", calls) as (client, ids):
        unstopped = iter(ids)  # shared: each cluster is stopped once

        async def caller() -> None:
            for cluster_id in unstopped:
                samples.append((await _timed_stop(client, cluster_id))[0])

        await asyncio.gather(*(caller() for _ in range(clients)))
    return {"clients": clients, **_percentiles(samples)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--smoke", action="store_true", help="1 server, 1 round, 5 calls")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.rounds, args.calls = [1], 1, 5
    configure_logging(level="WARNING")  # stdout carries the JSON alone
    with tempfile.TemporaryDirectory(prefix="obpilot-bench-") as directory:
        root = Path(directory)
        result: dict[str, Any] = {"metadb": "sqlite", "servers": {}}
        for size in args.sizes:
            result["servers"][str(size)] = await cluster_round(size, args.rounds, root)
        result["stop_call"] = await stop_call_latency(args.calls, root)
        result["stop_call_back_to_back"] = await stop_calls_back_to_back(args.calls, root)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
