"""The host agent's costs, printed as JSON.

(a) One look at a host (`inspect` of a stopped server: pid file, lock, ports), locally and
    over SSH (a real sshd on a loopback port): through the resident agent, next to the
    same-run baseline of a fresh interpreter per look (the agent's text and one request
    piped into `python3`, as every look cost before the agent). Wall time per look
    (median) and CPU time per look (the whole machine's busy time over the run, divided
    by the looks: it counts sshd and the interpreters too).
(b) From a server's death to UNAVAILABLE in the metadb: a real `obpilot serve` on SQLite
    with a cluster of one real seekdb server, which is SIGKILLed behind obpilot's back;
    the metadb is read directly (no GET) until the server is UNAVAILABLE. Target: within
    a second.

    .venv/bin/python bench/agent.py [--looks 100] [--deaths 3] [--smoke]

`--smoke` (what `make test` runs, tests/bench/): 5 looks (10 for the baseline) and one
death; the same code paths and JSON keys as a full run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.databases import free_port
from tests.support.fleet import Fleet
from tests.support.inventory import add_local_host
from tests.support.server import ADMIN_PASSWORD, ServerProcess
from tests.support.sshd import SshServer

import obpilot.schema  # noqa: F401  (every domain's table on the metadata, as the server has)
from obpilot.db.engine import Database
from obpilot.hosts.agent import BOOTSTRAP
from obpilot.hosts.agent_link import agent_source
from obpilot.hosts.executor import HostExecutor
from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.protocol import INSPECT, InspectRequest
from obpilot.hosts.ssh import SshCredential, SshExecutor, SshOptions, SshTarget
from obpilot.inventory.models import Server
from obpilot.logging import configure_logging


def busy_seconds() -> float:
    """CPU time the whole machine has spent on anything but idling, in seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


async def measure(looks: int, look: Callable[[], Awaitable[object]]) -> dict[str, float]:
    await look()  # warm-up: the agent starts, the SSH connection opens
    walls = []
    cpu_before = busy_seconds()
    for _ in range(looks):
        started = time.perf_counter()
        await look()
        walls.append(time.perf_counter() - started)
    cpu = busy_seconds() - cpu_before
    return {
        "wall_ms_median": round(statistics.median(walls) * 1000, 2),
        "wall_ms_p99": round(sorted(walls)[int(len(walls) * 0.99) - 1] * 1000, 2),
        "cpu_ms_per_look": round(cpu / looks * 1000, 2),
    }


def inspect_request(root: Path) -> InspectRequest:
    return {
        "pid_file": str(root / "run" / "seekdb.pid"),
        "home": str(root),
        "binaries": [str(root / "run" / "seekdb")],
        "port": free_port(),
        "other_ports": [],
    }


async def spawned_look(executor: HostExecutor, request: InspectRequest) -> object:
    """A look as it was before the agent: a fresh interpreter that runs the agent's text
    for one request, then exits."""
    source = agent_source()
    message = json.dumps({"id": 1, "action": INSPECT.name, **request}).encode()
    pipe = await executor.open_pipe([executor.python, "-u", "-c", BOOTSTRAP], step="look")
    await pipe.send(f"{len(source)}\n".encode() + source + message + b"\n")
    await pipe.receive_line()  # hello
    answer = json.loads(await pipe.receive_line())
    await pipe.close()
    return answer


async def looks(executor: HostExecutor, count: int, root: Path) -> dict[str, Any]:
    request = inspect_request(root)

    async def through_agent() -> object:
        return await executor.agent.call(INSPECT, request, step="look", time_limit=30)

    async def spawned() -> object:
        return await spawned_look(executor, request)

    agent = await measure(count, through_agent)
    baseline = await measure(max(10, count // 5), spawned)
    return {
        "agent": agent,
        "spawn_per_look": baseline,
        "wall_speedup": round(baseline["wall_ms_median"] / agent["wall_ms_median"], 1),
        "cpu_saving": round(baseline["cpu_ms_per_look"] / max(agent["cpu_ms_per_look"], 0.01), 1),
    }


async def death_to_unavailable(deaths: int, root: Path) -> dict[str, Any]:
    fleet = Fleet(root / "fleet", 1)
    await fleet.ensure_running()
    # Reads re-check at once, so that each round's GET identifies the restarted server.
    server = ServerProcess(root / "serve", env={"OBPILOT_RECONCILE_MAX_AGE_SECONDS": "0"}).start()
    database = Database(f"sqlite+aiosqlite:///{server.home / 'obpilot.db'}")
    samples = []
    try:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await fleet.register(session, host, name="watched")
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=60
        ) as client:
            for _ in range(deaths):
                await fleet.ensure_running()
                view = (await client.get(f"/api/v2/ob/clusters/{cluster.id}")).json()["data"]
                assert view["status"] == "RUNNING", view
                pid = (await fleet.status(fleet.servers[0])).pid
                assert pid is not None
                killed = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                async with asyncio.timeout(60):
                    await _until_unavailable(database)
                samples.append(time.perf_counter() - killed)
        return {
            "deaths": deaths,
            "seconds": [round(sample, 3) for sample in samples],
            "median_s": round(statistics.median(samples), 3),
            "target_s": 1.0,
            "target_met": max(samples) <= 1.0,
        }
    finally:
        server.stop()
        await database.dispose()
        await fleet.stop_all()


async def _until_unavailable(database: Database) -> None:
    """Reads the metadb every 5 ms, as nothing in obpilot signals this process."""
    while True:
        async with database.transaction() as session:
            if (await session.execute(select(Server.status))).scalar_one() == "UNAVAILABLE":
                return
        await asyncio.sleep(0.005)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--looks", type=int, default=100)
    parser.add_argument("--deaths", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="5 looks, 1 death")
    args = parser.parse_args()
    if args.smoke:
        args.looks, args.deaths = 5, 1
    configure_logging(level="WARNING")  # stdout carries the JSON alone
    with tempfile.TemporaryDirectory(prefix="obpilot-bench-") as directory:
        root = Path(directory)
        result: dict[str, Any] = {}
        local = LocalExecutor()
        try:
            result["look_local"] = await looks(local, args.looks, root)
        finally:
            await local.close()
        with SshServer(root / "sshd") as sshd:
            target = SshTarget(
                address="127.0.0.1",
                port=sshd.port,
                credential=SshCredential(sshd.username, private_key=sshd.client_key),
                host_key=sshd.host_key,
            )
            remote = SshExecutor(target, SshOptions(python=sys.executable))
            try:
                result["look_ssh"] = await looks(remote, args.looks, root)
            finally:
                await remote.close()
        result["death_to_unavailable"] = await death_to_unavailable(args.deaths, root)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
