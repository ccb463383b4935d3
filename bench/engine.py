"""The task engine's costs, printed as JSON.

(a) submit: the seed's 11-subtask stop DAG, and the stop DAG of 100 zones of 10 servers;
(b) submit-to-SUCCESSFUL of the 11-subtask DAG with no-op handlers, next to the same
    chain run as plain awaited coroutines in the same run (the floor);
(c) no-op subtasks per second on PostgreSQL with one and with two `obpilot serve`
    instances sharing the metadb;
(d) `GET /api/v2/tasks/instances/{id}` of the 100 x 10 stop task.

(a), (b) and (d) run on SQLite and, when OBPILOT_TEST_PG_URL is set (an admin URL, as
`scripts/test-services.sh env` prints), on PostgreSQL; (c) needs PostgreSQL.

    eval "$(bash scripts/test-services.sh env)"; .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.databases import fresh_database_url
from tests.support.engine_tasks import SEED_STOP, Noop, catalog_with, seed_context
from tests.support.server import ADMIN_PASSWORD, ServerProcess

from obpilot.app import create_app
from obpilot.db import migrate
from obpilot.db.engine import Database
from obpilot.engine import Context, Engine, EngineConfig, Template, parallel, single, submit
from obpilot.engine import repository as repo
from obpilot.logging import configure_logging
from obpilot.settings import Settings

ENDED: dict[int, asyncio.Event] = {}


async def _ended(_session: object, task: Any) -> None:
    event = ENDED.get(task.id)
    if event is not None:
        event.set()


# The seed's chain, with a hook that tells the benchmark when the task ends.
TIMED_SEED = Template(
    key="bench.seed-stop", name="Stop OB cluster", stages=SEED_STOP.stages, on_end=_ended
)
WIDE = Template(
    key="bench.wide",
    name="Wide no-op",
    stages=[single(Noop), parallel(Noop, over="items"), single(Noop)],
)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1 if len(ordered) >= 10 else -1], 3),
        "min_ms": round(ordered[0], 3),
    }


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def submit_seconds(database: Database, context: Context) -> tuple[float, int]:
    started = time.perf_counter()
    async with database.transaction(write=True) as session:
        task = await submit(session, SEED_STOP, context, creator_id=1, creator_name="bench")
    return time.perf_counter() - started, task.id


async def bench_submit(database: Database, runs: int) -> dict[str, Any]:
    small = [(await submit_seconds(database, seed_context()))[0] * 1000 for _ in range(runs)]
    big_context = seed_context(zones=100, servers_per_zone=10)
    big_ms = []
    task_id = 0
    for _ in range(3):
        seconds, task_id = await submit_seconds(database, big_context)
        big_ms.append(seconds * 1000)
    async with database.transaction() as session:
        count = len(await repo.list_subtasks(session, task_id))
    return {
        "seed_11_subtasks": summary(small),
        "stop_100_zones_x_10_servers": {"subtasks": count, **summary(big_ms)},
        "big_task_id": task_id,
    }


async def bench_run(database: Database, runs: int) -> dict[str, Any]:
    engine = Engine(
        database,
        EngineConfig(executor="bench", workers=8, poll_seconds=2),
        catalog=catalog_with(TIMED_SEED, WIDE),  # the hook tells when a task ends
    )
    await engine.start()
    try:
        samples = []
        for number in range(runs + 2):

            async def one_task() -> None:
                async with database.transaction(write=True) as session:
                    task = await submit(
                        session, TIMED_SEED, seed_context(), creator_id=1, creator_name="bench"
                    )
                    ENDED[task.id] = asyncio.Event()
                await asyncio.wait_for(ENDED[task.id].wait(), 30)

            elapsed = await timed(one_task)
            if number >= 2:  # the first two warm caches and connections
                samples.append(elapsed)
    finally:
        await engine.stop()
    return summary(samples)


async def floor(runs: int) -> dict[str, float]:
    """The same 11 steps as plain awaited coroutines: what the work itself costs."""
    plan = SEED_STOP.plan(seed_context())
    context = SimpleNamespace(get=lambda _key, default=None: default)  # what Noop reads

    async def chain() -> None:
        for node in plan:
            await node.subtask().execute(context)  # type: ignore[arg-type]

    return summary([await timed(chain) for _ in range(runs)])


async def bench_get(database: Database, task_id: int, home: Path, runs: int) -> dict[str, Any]:
    url = database.url.render_as_string(hide_password=False)
    settings = Settings(
        home=home,
        metadb_url=url,
        admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        engine_workers=0,
    )
    app = create_app(settings, run_migrations=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", auth=("admin", ADMIN_PASSWORD)
        ) as client:
            path = f"/api/v2/tasks/instances/{task_id}"

            async def get() -> None:
                response = await client.get(path)
                assert response.status_code == 200, response.text
                assert len(response.json()["data"]["subtasks"]) > 3000

            await get()
            info = summary([await timed(lambda: client.get("/api/v2/info")) for _ in range(runs)])
            return {
                "get_task_3206_subtasks": summary([await timed(get) for _ in range(runs)]),
                "baseline_get_info": info,
            }


async def bench_throughput(admin_url: str, home: Path, subtasks: int) -> dict[str, Any]:
    env = {
        "OBPILOT_EXTRA_MODULES": "tests.support.engine_tasks",
        "OBPILOT_ENGINE_WORKERS": "8",
        "OBPILOT_ENGINE_POLL_SECONDS": "0.1",
        "OBPILOT_LOG_LEVEL": "WARNING",
    }
    result: dict[str, Any] = {}
    for instances in (1, 2):
        url, drop = fresh_database_url(admin_url)
        migrate.upgrade(url)
        servers = [
            ServerProcess(home / f"{instances}-{n}", metadb_url=url, env=env)
            for n in range(instances)
        ]
        database = Database(url)
        try:
            for server in servers:
                server.start()
            context = Context.of(lists={"items": range(subtasks)})
            started = time.perf_counter()
            async with database.transaction(write=True) as session:
                task = await submit(session, WIDE, context, creator_id=1, creator_name="bench")
            while True:
                async with database.transaction() as session:
                    row = await repo.get_task(session, task.id)
                assert row is not None
                if row.status != "RUNNING":
                    break
                await asyncio.sleep(0.02)
            seconds = time.perf_counter() - started
            async with database.transaction() as session:
                executors = {s.executor for s in await repo.list_subtasks(session, task.id)}
            result[f"{instances}_instance{'s' if instances > 1 else ''}"] = {
                "subtasks": subtasks + 2,
                "seconds": round(seconds, 2),
                "subtasks_per_second": round((subtasks + 2) / seconds, 1),
                "status": row.status,
                "executors": len(executors),
            }
        finally:
            for server in servers:
                server.stop()
            await database.dispose()
            drop()
    return result


async def one_metadb(name: str, url: str, home: Path, runs: int) -> dict[str, Any]:
    migrate.upgrade(url)
    database = Database(url)
    try:
        ran = await bench_run(database, runs)  # first: later submits leave work undone
        submitted = await bench_submit(database, runs)
        big_task = submitted.pop("big_task_id")
        got = await bench_get(database, big_task, home / f"get-{name}", min(runs, 10))
    finally:
        await database.dispose()
    return {"submit": submitted, "submit_to_successful_seed_11": ran, **got}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--throughput-subtasks", type=int, default=1000)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    result: dict[str, Any] = {"floor_plain_coroutines_seed_11": await floor(args.runs)}
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        result["sqlite"] = await one_metadb(
            "sqlite", f"sqlite+aiosqlite:///{home / 'bench.db'}", home, args.runs
        )
        admin = os.environ.get("OBPILOT_TEST_PG_URL")
        if admin:
            url, drop = fresh_database_url(admin)
            try:
                result["postgresql"] = await one_metadb("postgresql", url, home, args.runs)
            finally:
                drop()
            result["postgresql"]["noop_throughput"] = await bench_throughput(
                admin, home, args.throughput_subtasks
            )
        else:
            result["postgresql"] = "skipped: OBPILOT_TEST_PG_URL is not set"
    result["cpu_count"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
