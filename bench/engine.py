"""The task engine's costs, printed as JSON.

(a) submit: the seed's 11-subtask stop DAG, and the stop DAG of 100 zones of 10 servers;
(b) submit-to-SUCCESSFUL of the 11-subtask DAG with no-op handlers, each run followed by
    the floor in the same run: the least metadb work it needs (per subtask, one claim and
    one finish transaction, a conditional UPDATE each); target: at most 2x the floor;
(c) `GET /api/v2/tasks/instances/{id}` of the 100 x 10 stop task, next to the floor in the
    same run: one SELECT of its subtask rows encoded by the JSON library alone; target: at
    most 2x the floor;
(d) recovery: `obpilot serve` killed (SIGKILL) during a running subtask and started again
    (the same instance name): seconds from its answering HTTP again to the subtask running
    again; target: under 2 s (without the boot id it waited for the lease, 30 s);
(e) on PostgreSQL, one and two `obpilot serve` instances sharing the metadb: no-op
    subtasks per second, and a fan-out of 400 subtasks that each wait 200 ms on I/O
    (target: two take at most 0.6 of one's time).

(a) to (d) run on SQLite and, when OBPILOT_TEST_PG_URL is set (an admin URL, as
`scripts/test-services.sh env` prints), on PostgreSQL; (e) needs PostgreSQL.

    eval "$(bash scripts/test-services.sh env)"; .venv/bin/python bench/engine.py [--smoke]

`--smoke` (what `make test` runs, tests/bench/): one timed run of each, the 100 x 10 task
submitted once, fan-outs of 20 and 16 subtasks; the same code paths and JSON keys as a full
run.
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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import Table, select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.databases import fresh_database_url
from tests.support.engine_tasks import (
    CRASH_RESUMABLE,
    SEED_STOP,
    SPREAD,
    Noop,
    catalog_with,
    seed_context,
)
from tests.support.server import ADMIN_PASSWORD, ServerProcess

import obpilot.schema  # noqa: F401  (every domain's table on the metadata, as the server has)
from obpilot.app import create_app
from obpilot.db import migrate
from obpilot.db.engine import Database
from obpilot.engine import (
    Context,
    Engine,
    EngineConfig,
    SubtaskInstance,
    Template,
    parallel,
    single,
    submit,
)
from obpilot.engine import repository as repo
from obpilot.logging import configure_logging
from obpilot.settings import Settings

FLOOR_TARGET = 2.0  # submit-to-SUCCESSFUL over the floor
READ_TARGET = 2.0  # the large task's GET over one SELECT of its rows plus json.dumps
SUBTASKS = cast(Table, SubtaskInstance.__table__)
RECOVERY_TARGET_SECONDS = 2.0
SPREAD_TARGET = 0.6  # two instances' time over one's
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
# Instances of `obpilot serve` register the engine tests' templates (SPREAD among them)
# and WIDE's classes; WIDE itself is submitted from here, by its key.
SERVE_ENV = {
    "OBPILOT_EXTRA_MODULES": "tests.support.engine_tasks",
    "OBPILOT_ENGINE_WORKERS": "8",
    "OBPILOT_LOG_LEVEL": "WARNING",
}
# A recovery's server: once the figure is taken, its stop need not drain the subtask that
# sleeps on (the default lets it 20 s); the measurement itself never stops it gently.
RECOVERY_ENV = {**SERVE_ENV, "OBPILOT_ENGINE_DRAIN_SECONDS": "0"}


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
    for _ in range(min(runs, 3)):
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
    """Submit-to-SUCCESSFUL of the seed's DAG, each run followed by the floor
    (`floor_once`) on the same metadb, so that both meet the same load."""
    engine = Engine(
        database,
        EngineConfig(executor="bench", workers=8, poll_seconds=2),
        catalog=catalog_with(TIMED_SEED, WIDE),  # the hook tells when a task ends
    )
    await engine.start()
    try:
        samples: list[float] = []
        floors: list[float] = []
        for number in range(runs + 2):

            async def one_task() -> None:
                async with database.transaction(write=True) as session:
                    task = await submit(
                        session, TIMED_SEED, seed_context(), creator_id=1, creator_name="bench"
                    )
                    ENDED[task.id] = asyncio.Event()
                await asyncio.wait_for(ENDED[task.id].wait(), 30)

            elapsed = await timed(one_task)
            floor_ms = await floor_once(database)
            if number >= 2:  # the first two warm caches and connections
                samples.append(elapsed)
                floors.append(floor_ms)
    finally:
        await engine.stop()
    ratio = statistics.median(samples) / statistics.median(floors)
    return {
        "engine": summary(samples),
        "floor_claim_and_finish_updates": summary(floors),
        "ratio_p50": round(ratio, 2),
        "target_ratio": FLOOR_TARGET,
        "target_met": ratio <= FLOOR_TARGET,
    }


async def floor_once(database: Database) -> float:
    """The least metadb work of one run of the seed's DAG, in ms: per subtask in DAG order,
    one claim transaction and one finish transaction, each a conditional UPDATE (Core, the
    same async driver and database). Its subtasks are submitted all PENDING (untimed), so
    that the engine beside it never claims them."""
    async with database.transaction(write=True) as session:
        task = await submit(session, SEED_STOP, seed_context(), creator_id=1, creator_name="floor")
        await session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.task_id == task.id)
            .values(status="PENDING")
        )
        ids = [subtask.id for subtask in await repo.list_subtasks(session, task.id)]
    table = cast(Table, SubtaskInstance.__table__)
    unreaped = datetime.now(UTC) + timedelta(hours=1)  # a lease the reaper leaves alone
    started = time.perf_counter()
    for subtask_id in ids:  # the seed's DAG is a chain: id order is DAG order
        for source, target, lease in (
            ("PENDING", "RUNNING", unreaped),
            ("RUNNING", "SUCCESSFUL", None),
        ):
            async with database.engine.begin() as connection:
                result = await connection.execute(
                    update(table)
                    .where(table.c.id == subtask_id, table.c.status == source)
                    .values(status=target, lease_deadline=lease, version=table.c.version + 1)
                )
                assert result.rowcount == 1
    return (time.perf_counter() - started) * 1000


async def bench_get(database: Database, task_id: int, home: Path, runs: int) -> dict[str, Any]:
    url = database.url.render_as_string(hide_password=False)
    settings = Settings(
        home=home,
        metadb_url=url,
        admin_password=ADMIN_PASSWORD,
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

            async def floor() -> None:
                """One SELECT of the task's subtask rows, encoded by the JSON library."""
                async with database.transaction() as session:
                    rows = (
                        await session.execute(select(SUBTASKS).where(SUBTASKS.c.task_id == task_id))
                    ).all()
                json.dumps([tuple(row) for row in rows], default=str).encode()

            answer = (await client.get(path)).json()
            assert len(answer["data"]["subtasks"]) > 3000
            gets: list[float] = []
            floors: list[float] = []
            for _ in range(runs):  # interleaved: both meet the same load
                floors.append(await timed(floor))
                gets.append(await timed(get))
            info = summary([await timed(lambda: client.get("/api/v2/info")) for _ in range(runs)])
            ratio = statistics.median(gets) / statistics.median(floors)
            return {
                "get_task_3206_subtasks": summary(gets),
                "floor_select_and_json_dumps": summary(floors),
                "ratio_p50": round(ratio, 2),
                "target_ratio": READ_TARGET,
                "target_met": ratio <= READ_TARGET,
                "baseline_get_info": info,
            }


async def subtasks_of(database: Database, task_id: int) -> list[SubtaskInstance]:
    async with database.transaction() as session:
        return await repo.list_subtasks(session, task_id)


async def second_running(database: Database, task_id: int, *, run_time: int) -> None:
    """Returns once the task's second subtask is RUNNING its run `run_time`."""
    while True:
        subtask = (await subtasks_of(database, task_id))[1]
        if (subtask.status, subtask.run_time) == ("RUNNING", run_time):
            return
        await asyncio.sleep(0.01)


async def bench_recovery(url: str, home: Path, *, another_name: bool = False) -> dict[str, Any]:
    """SIGKILL `obpilot serve` while a resumable subtask runs, start it again (default lease
    of 30 s) on the same port, so under the same instance name, or with `another_name` on
    another port, so under another name: how long from its answering HTTP to that subtask
    running again (its second run)."""
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    migrate.upgrade(url)
    server = ServerProcess(home, metadb_url=url, env=RECOVERY_ENV)
    database = Database(url)
    try:
        server.start()
        context = Context.of({"first_run_sleep_seconds": 600, "sleep_seconds": 60})
        async with database.transaction(write=True) as session:
            task = await submit(
                session, CRASH_RESUMABLE, context, creator_id=1, creator_name="bench"
            )
        await second_running(database, task.id, run_time=1)
        server.kill()
        killed = time.perf_counter()
        if another_name:
            server = ServerProcess(home, metadb_url=url, env=RECOVERY_ENV)
        server.start()
        answering = time.perf_counter()
        await second_running(database, task.id, run_time=2)
        seconds = time.perf_counter() - answering
        return {
            "lease_seconds": Settings().engine_lease_seconds,
            "kill_to_answering_seconds": round(answering - killed, 2),
            "answering_to_running_again_seconds": round(seconds, 3),
            "target_seconds": RECOVERY_TARGET_SECONDS,
            "target_met": seconds < RECOVERY_TARGET_SECONDS,
        }
    finally:
        server.stop()
        await database.dispose()


#: The recovery figures: each is measured on a fresh metadb and `obpilot serve` home of
#: its own, and lands under its key in its metadb's result (name -> measure(url, home)).
RECOVERIES: dict[str, Callable[[str, Path], Awaitable[dict[str, Any]]]] = {
    "recovery": bench_recovery,
    "recovery_another_name": partial(bench_recovery, another_name=True),
}


async def recoveries(dialect: str, admin_url: str | None, home: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, measure in RECOVERIES.items():
        figure_home = home / f"{name}-{dialect}"
        with fresh_metadb(admin_url, figure_home / "obpilot.db") as url:
            figures[name] = await measure(url, figure_home)
    return figures


async def on_instances(
    admin_url: str,
    home: Path,
    instances: int,
    template: Template,
    context: Context,
    env: dict[str, str],
) -> dict[str, Any]:
    """Runs one task of `template` on `instances` `obpilot serve` processes sharing a fresh
    PostgreSQL database: seconds from submit to its end."""
    url, drop = fresh_database_url(admin_url)
    migrate.upgrade(url)
    servers = [
        ServerProcess(home / f"{template.key}-{instances}-{n}", metadb_url=url, env=env)
        for n in range(instances)
    ]
    database = Database(url)
    try:
        # Started side by side, each start waiting for its HTTP; the timing begins once all
        # answer. Every start has ended (or failed) before `finally` stops them.
        starts = [asyncio.to_thread(server.start) for server in servers]
        for outcome in await asyncio.gather(*starts, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        started = time.perf_counter()
        async with database.transaction(write=True) as session:
            task = await submit(session, template, context, creator_id=1, creator_name="bench")
        while True:
            async with database.transaction() as session:
                row = await repo.get_task(session, task.id)
            assert row is not None
            if row.status != "RUNNING":
                break
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
        subtasks = await subtasks_of(database, task.id)
        return {
            "subtasks": len(subtasks),
            "seconds": round(seconds, 2),
            "subtasks_per_second": round(len(subtasks) / seconds, 1),
            "status": row.status,
            "executors": len({s.executor for s in subtasks}),
        }
    finally:
        for server in servers:
            server.stop()
        await database.dispose()
        drop()


async def bench_throughput(admin_url: str, home: Path, subtasks: int) -> dict[str, Any]:
    """No-op subtasks per second, polling every 0.1 s."""
    context = Context.of(lists={"items": range(subtasks)})
    env = {**SERVE_ENV, "OBPILOT_ENGINE_POLL_SECONDS": "0.1"}
    one = await on_instances(admin_url, home, 1, WIDE, context, env)
    two = await on_instances(admin_url, home, 2, WIDE, context, env)
    return {"1_instance": one, "2_instances": two}


async def bench_spread(admin_url: str, home: Path, subtasks: int) -> dict[str, Any]:
    """A fan-out of subtasks that each wait 200 ms on I/O, with the default settings but
    8 workers per instance: two instances should share it."""
    context = Context.of({"sleep_seconds": 0.2}, {"items": range(subtasks)})
    one = await on_instances(admin_url, home, 1, SPREAD, context, SERVE_ENV)
    two = await on_instances(admin_url, home, 2, SPREAD, context, SERVE_ENV)
    ratio = two["seconds"] / one["seconds"]
    return {
        "1_instance": one,
        "2_instances": two,
        "ratio": round(ratio, 2),
        "target_ratio": SPREAD_TARGET,
        "target_met": ratio <= SPREAD_TARGET,
    }


@contextmanager
def fresh_metadb(admin_url: str | None, sqlite_path: Path) -> Iterator[str]:
    """A new metadb's URL, not migrated yet: the SQLite file `sqlite_path`, or with
    `admin_url` a new PostgreSQL database, dropped afterwards."""
    if admin_url is None:
        yield f"sqlite+aiosqlite:///{sqlite_path}"
        return
    url, drop = fresh_database_url(admin_url)
    try:
        yield url
    finally:
        drop()


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
    parser.add_argument("--spread-subtasks", type=int, default=400)
    parser.add_argument("--smoke", action="store_true", help="1 run, fan-outs of 20 and 16")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.throughput_subtasks, args.spread_subtasks = 1, 20, 16
    configure_logging(level="WARNING")
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        admin = os.environ.get("OBPILOT_TEST_PG_URL")
        metadbs = {"sqlite": None, **({"postgresql": admin} if admin else {})}
        for dialect, admin_url in metadbs.items():
            with fresh_metadb(admin_url, home / "bench.db") as url:
                result[dialect] = await one_metadb(dialect, url, home, args.runs)
            result[dialect].update(await recoveries(dialect, admin_url, home))
        if admin:
            result["postgresql"]["noop_throughput"] = await bench_throughput(
                admin, home, args.throughput_subtasks
            )
            result["postgresql"]["io_fan_out_200ms"] = await bench_spread(
                admin, home, args.spread_subtasks
            )
        else:
            result["postgresql"] = "skipped: OBPILOT_TEST_PG_URL is not set"
    result["cpu_count"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
