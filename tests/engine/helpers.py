"""Small helpers shared by the engine's metadb tests, and `GATED`, a template that real
server processes register too (OBPILOT_EXTRA_MODULES=...,tests.engine.helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from obpilot.engine import (
    Context,
    Engine,
    Subtask,
    SubtaskContext,
    SubtaskInstance,
    TaskInstance,
    Template,
    parallel,
)
from obpilot.engine.notifier import NOTIFIER
from tests.support.engine_tasks import record, subtask_named


def ctx(record_file: Path, **strings: object) -> Context:
    """A task context whose subtasks record their executions to `record_file`."""
    return Context.of({"record_file": record_file, **strings})


def running(name: str) -> Callable[[TaskInstance, list[SubtaskInstance]], bool]:
    """A `wait_for` condition: the subtask called `name` is RUNNING."""
    return lambda _task, subtasks: subtask_named(subtasks, name).status == "RUNNING"


async def crash(engine: Engine) -> None:
    """Ends `engine` as SIGKILL would end its process: its handlers and loops stop at once
    and it writes nothing more; its leases stay in the metadb as they were."""
    if engine._listener is not None:
        NOTIFIER.unsubscribe(engine._listener)
    runs = [task for run in engine.runs.values() for task in (run.handler, run.task) if task]
    doomed = [*runs, *engine._loops, *([engine._log_task] if engine._log_task else [])]
    for task in doomed:
        task.cancel()
    await asyncio.gather(*doomed, return_exceptions=True)


class GatedAttempt(Subtask):
    """Waits until the file `gate_file` exists (the test opens the gate); records when each
    run starts and when it ends, however it ends (a SIGKILL: never)."""

    name = "Gated attempt"
    timeout = 120
    resumable = True

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        record(ctx, "start")
        try:
            gate = Path(ctx.require("gate_file"))
            while not await asyncio.to_thread(gate.exists):
                await ctx.sleep(0.02)
        finally:
            record(ctx, "end")


GATED = Template(key="test.gated", name="Gated", stages=[parallel(GatedAttempt, over="items")])
TEMPLATES = (GATED,)
