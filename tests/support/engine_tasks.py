"""Subtask classes and templates for the task engine's tests, registered by real server
processes through OBPILOT_EXTRA_MODULES=tests.support.engine_tasks (PYTHONPATH = repo), by
the `app` fixture the same way, and by `running_engine` (its `CATALOG`): `TEMPLATES` holds
a template for every class here.

Behaviour comes from the task context, so one class serves many tests:

* `record_file`: every run appends JSON lines {"event": "start"|"end", ...} (executions);
* `sleep_seconds` / `first_run_sleep_seconds`: how long `Sleep*` sleeps (first run / others);
* `fail_until_run`: `Flaky` fails while its runTime is below this number;
* `log_lines`: how many lines `Chatty` logs (one per `line_interval` seconds)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography.fernet import Fernet

from obpilot.db.engine import Database
from obpilot.engine import (
    Catalog,
    Context,
    Engine,
    EngineConfig,
    Subtask,
    SubtaskContext,
    SubtaskError,
    SubtaskInstance,
    TaskInstance,
    Template,
    parallel,
    single,
    submit,
)
from obpilot.engine import repository as repo
from obpilot.secretbox import SecretBox


def record(ctx: SubtaskContext[object], event: str, **extra: object) -> None:
    path = ctx.get("record_file")
    if not path:
        return
    entry = {
        "event": event,
        "subtask": ctx.subtask_id,
        "task": ctx.task_id,
        "run": ctx.run_time,
        "operation": ctx.operation.value,
        "executor": ctx.executor,
        "pid": os.getpid(),
        "t": time.time(),
        "idx": ctx.parallel_idx,
        **extra,
    }
    with Path(path).open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


def read_records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Noop(Subtask):
    name = "No-op"
    timeout = 30

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        record(ctx, "end")

    async def rollback(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "rollback")


class Sleep(Subtask):
    """Sleeps (hard: only asyncio cancellation stops it), recording start and end."""

    name = "Sleep"
    timeout = 600

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        first = ctx.get("first_run_sleep_seconds")
        seconds = float(
            first
            if first is not None and ctx.run_time == 1
            else ctx.get("sleep_seconds", "0.5") or 0
        )
        ctx.log(f"sleeping {seconds} s")
        await asyncio.sleep(seconds)
        ctx.log("woke up")
        record(ctx, "end")


class ResumableSleep(Sleep):
    name = "Resumable sleep"
    resumable = True


class Flaky(Subtask):
    name = "Flaky"
    timeout = 30

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        if ctx.run_time < int(ctx.get("fail_until_run", "2") or 2):
            ctx.log("about to fail")
            raise SubtaskError(f"flaky failure on run {ctx.run_time}")
        record(ctx, "end")

    async def rollback(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "rollback")


class BadRollback(Subtask):
    """Runs fine; its first rollback fails (a rollback run has runTime 2 or more)."""

    name = "Bad rollback"
    timeout = 30

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")

    async def rollback(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "rollback")
        if ctx.run_time == 2:
            raise SubtaskError("rollback failed once")


class Broken(Subtask):
    """Raises an unexpected exception (not SubtaskError)."""

    name = "Broken"
    timeout = 30
    retryable = False
    skippable = False

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        raise RuntimeError("boom")


class Permanent(Subtask):
    name = "Permanent change"
    timeout = 30
    rollbackable = False

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")


class Cooperative(Subtask):
    """Runs until cancelled, checking for cancellation between short steps."""

    name = "Cooperative"
    timeout = 600

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        while True:
            await asyncio.sleep(0.02)
            if ctx.cancelled:
                record(ctx, "noticed-cancel")
                ctx.check_cancelled()


class Stubborn(Subtask):
    """Never checks for cancellation: only asyncio cancellation stops it."""

    name = "Stubborn"
    timeout = 600

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            record(ctx, "hard-cancelled")
            raise


class Quick(Subtask):
    """Times out (its timeout is 1 s) unless `sleep_seconds` is short."""

    name = "Quick"
    timeout = 1

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        await asyncio.sleep(float(ctx.get("sleep_seconds", "5") or 5))


class Chatty(Subtask):
    name = "Chatty"
    timeout = 120

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        for number in range(int(ctx.get("log_lines", "3") or 3)):
            ctx.log(f"line {number}")
            await asyncio.sleep(float(ctx.get("line_interval", "0.01") or 0.01))


class Gate(Subtask):
    """Waits until the file `gate_file` exists (the test opens the gate)."""

    name = "Gate"
    timeout = 60

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        gate = Path(ctx.require("gate_file"))
        while not await asyncio.to_thread(gate.exists):
            await ctx.sleep(0.02)


class Publisher(Subtask):
    name = "Publisher"
    timeout = 30

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        suffix = f"_{ctx.parallel_idx}" if ctx.parallel_idx >= 0 else ""
        await ctx.publish(f"published{suffix}", f"value from {ctx.item if suffix else 'single'}")
        await ctx.publish_list("numbers", [1, 2, 3])
        await ctx.publish("shared", f"written by {ctx.parallel_idx}")


class Reader(Subtask):
    name = "Reader"
    timeout = 30

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        seen = {k: v for k, v in ctx.strings.items() if k.startswith(("published", "shared"))}
        ctx.log("saw " + json.dumps(seen, sort_keys=True))
        ctx.log("numbers " + ",".join(ctx.get_list("numbers")))
        if ctx.get("root_password") is not None:
            ctx.log(f"password is {ctx.get('root_password')}")


# The seed's stop DAG, with no-op handlers (the real ones live in flows/).
class PrepareStopCluster(Noop):
    name = "Prepare stop cluster"


class PrepareStopZone(Noop):
    name = "Prepare stop OB zone"


class PrepareStopObserver(Noop):
    name = "Prepare stop observer"


class StopObserverProcess(Noop):
    name = "Stop observer process"


class UpdateObserverStatus(Noop):
    name = "Update observer status"


class UpdateZoneStatus(Noop):
    name = "Update zone status"


class UpdateClusterStatus(Noop):
    name = "Update OB cluster status"


#: The seed's stop DAG for one zone with one server: a chain, in this order.
SEED_STOP_NAMES = [
    "Prepare stop cluster",
    "Prepare stop OB zone",
    "Wait node",
    "Prepare stop observer",
    "Wait node",
    "Stop observer process",
    "Wait node",
    "Update observer status",
    "Wait node",
    "Update zone status",
    "Update OB cluster status",
]

SEED_STOP = Template(
    key="test.seed-stop",
    name="Stop OB cluster",
    stages=[
        single(PrepareStopCluster),
        parallel(PrepareStopZone, over="zone_names"),
        parallel(PrepareStopObserver, over="server_ids"),
        parallel(StopObserverProcess, over="server_ids"),
        parallel(UpdateObserverStatus, over="server_ids"),
        parallel(UpdateZoneStatus, over="zone_names"),
        single(UpdateClusterStatus),
    ],
)


def seed_context(zones: int = 1, servers_per_zone: int = 1) -> Context:
    return Context.of(
        {"cluster_name": "ob_upgrade", "cluster_id": 21, "former_cluster_status": "RUNNING"},
        {
            "server_ids": [5 + n for n in range(zones * servers_per_zone)],
            "zone_names": [f"zone{z + 1}" for z in range(zones)],
        },
    )


def one(subtask: type[Subtask], key: str | None = None) -> Template:
    """A one-subtask template."""
    return Template(
        key=key or f"test.one.{subtask.__name__}", name=subtask.name, stages=[single(subtask)]
    )


SPREAD = Template(
    key="test.spread",
    name="Spread",
    stages=[single(Noop), parallel(Sleep, over="items"), single(Noop)],
)
CRASH = Template(key="test.crash", name="Crash", stages=[single(Noop), single(Sleep), single(Noop)])
CRASH_RESUMABLE = Template(
    key="test.crash-resumable",
    name="Crash resumable",
    stages=[single(Noop), single(ResumableSleep), single(Noop)],
)

TEMPLATES = (
    SEED_STOP,
    SPREAD,
    CRASH,
    CRASH_RESUMABLE,
    *(
        one(subtask)
        for subtask in (
            Flaky,
            BadRollback,
            Broken,
            Permanent,
            Cooperative,
            Stubborn,
            Quick,
            Chatty,
            Gate,
            Publisher,
            Reader,
        )
    ),
)


def catalog_with(*templates: Template) -> Catalog:
    """A catalog of `TEMPLATES` and `templates` (a test's own, such as one with an end
    hook: the engine finds the hook there)."""
    catalog = Catalog()
    catalog.register(*TEMPLATES, *templates)
    return catalog


CATALOG = catalog_with()


# ------------------------------------------------------------------ helpers for tests


async def submit_task(
    database: Database, template: Template, context: Context, **kwargs: object
) -> int:
    async with database.transaction(write=True) as session:
        task = await submit(
            session,
            template,
            context,
            creator_id=kwargs.pop("creator_id", 1),  # type: ignore[arg-type]
            creator_name=kwargs.pop("creator_name", "admin"),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        return task.id


async def snapshot(database: Database, task_id: int) -> tuple[TaskInstance, list[SubtaskInstance]]:
    async with database.transaction() as session:
        task = await repo.get_task(session, task_id)
        assert task is not None
        return task, await repo.list_subtasks(session, task_id)


async def wait_for(
    database: Database,
    task_id: int,
    condition: Callable[[TaskInstance, list[SubtaskInstance]], bool],
    *,
    within: float = 30.0,
    what: str = "condition",
) -> tuple[TaskInstance, list[SubtaskInstance]]:
    """Polls the metadb until `condition` holds (a guard against hanging, not a speed test)."""
    deadline = time.monotonic() + within
    while True:
        task, subtasks = await snapshot(database, task_id)
        if condition(task, subtasks):
            return task, subtasks
        if time.monotonic() > deadline:
            states = [(s.id, s.name, s.status, s.operation, s.executor) for s in subtasks]
            raise AssertionError(
                f"task {task_id}: {what} not reached in {within} s; task {task.status}/"
                f"{task.operation}, subtasks {states}"
            )
        await asyncio.sleep(0.05)


async def wait_task(
    database: Database, task_id: int, status: str, *, within: float = 30.0
) -> tuple[TaskInstance, list[SubtaskInstance]]:
    return await wait_for(
        database, task_id, lambda t, _: t.status == status, within=within, what=status
    )


def subtask_named(subtasks: list[SubtaskInstance], name: str) -> SubtaskInstance:
    matches = [s for s in subtasks if s.name == name]
    assert len(matches) == 1, (name, [s.name for s in subtasks])
    return matches[0]


async def log_of(database: Database, subtask_id: int) -> list[str]:
    async with database.transaction() as session:
        return await repo.subtask_log(session, subtask_id)


FAST = {
    "lease_seconds": 2.0,
    "heartbeat_seconds": 0.5,
    "poll_seconds": 0.1,
    "cancel_grace_seconds": 0.3,
    "drain_seconds": 2.0,
}
SECRET_BOX = SecretBox(Fernet.generate_key())


@asynccontextmanager
async def running_engine(
    database: Database,
    executor: str = "test-node",
    *,
    catalog: Catalog = CATALOG,
    **overrides: float,
) -> AsyncIterator[Engine]:
    """An engine of `catalog` with short leases and polls, stopped (drained) on exit."""
    settings = {**FAST, "workers": 4, **overrides}
    engine = Engine(
        database,
        EngineConfig(
            executor=executor,
            workers=int(settings.pop("workers")),
            **settings,
        ),
        catalog=catalog,
        secret_box=SECRET_BOX,
    )
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
