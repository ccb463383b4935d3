"""Leases: a dead executor's subtasks reaped (resumed or failed), a live lease left alone,
a worker that lost its lease stopping, and a restarted instance taking back at once what
its previous boot held, and nothing of another instance's."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import Context, SubtaskInstance, retry_subtask
from obpilot.engine import repository as repo
from obpilot.engine.processes import ProcessIdentity, this_process
from obpilot.engine.transitions import Holder
from tests.engine.helpers import GATED, crash, ctx, running
from tests.support.engine_tasks import (
    CATALOG,
    CRASH,
    CRASH_RESUMABLE,
    Stubborn,
    catalog_with,
    log_of,
    one,
    read_records,
    running_engine,
    snapshot,
    submit_task,
    subtask_named,
    wait_for,
    wait_task,
)

GHOST = Holder("ghost:1", "ghost-machine", "1" * 32)
# What `running_engine()` (instance "test-node", on this machine) held in a previous boot.
PREVIOUS_BOOT = Holder("test-node", socket.gethostname(), "0" * 32)


async def _claim_as_ghost(
    database: Database, task_id: int, *, expired: bool, holder: Holder = GHOST
) -> SubtaskInstance:
    """Marks the task's second subtask RUNNING under a lease of `holder`, a process that is
    gone."""
    async with database.transaction(write=True) as session:
        subtasks = await repo.list_subtasks(session, task_id)
        target = subtasks[1]
        deadline = utcnow() - timedelta(seconds=5) if expired else utcnow() + timedelta(hours=1)
        await session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.id == subtasks[0].id)
            .values(status="SUCCESSFUL")
        )
        await session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.id == target.id)
            .values(
                status="RUNNING",
                executor=holder.executor,
                lease_token="f" * 32,
                lease_deadline=deadline,
                lease_host=holder.host,
                lease_boot=holder.boot,
                lease_machine=holder.process.machine if holder.process else None,
                lease_pid=holder.process.pid if holder.process else None,
                lease_pid_started=holder.process.started if holder.process else None,
                upstreams_left=0,
                start_time=utcnow(),
            )
        )
        return target


async def test_an_executor_lost_fails_a_subtask_that_cannot_resume_and_retry_clears(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database, workers=0):  # only the reaper
        task_id = await submit_task(any_database, CRASH, ctx(record_file, sleep_seconds=0))
        await asyncio.sleep(0.2)
        ghost = await _claim_as_ghost(any_database, task_id, expired=True)
        _, subtasks = await wait_task(any_database, task_id, "FAILED")
    lost = subtask_named(subtasks, "Sleep")
    assert lost.id == ghost.id
    assert lost.error_code == "TSK10015"
    assert "executor ghost:1 lost" in (lost.error_message or "")
    assert "retry it" in (await log_of(any_database, lost.id))[-1]
    async with running_engine(any_database):
        async with any_database.transaction(write=True) as session:
            await retry_subtask(
                session, task_id=task_id, subtask_id=lost.id, actor="admin", catalog=CATALOG
            )
        _, subtasks = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert subtask_named(subtasks, "Sleep").run_time == 2
    assert subtask_named(subtasks, "Sleep").error_message is None


async def test_an_executor_lost_makes_a_resumable_subtask_ready_again(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database, workers=0):
        task_id = await submit_task(
            any_database, CRASH_RESUMABLE, ctx(record_file, sleep_seconds=0)
        )
        await asyncio.sleep(0.2)
        await _claim_as_ghost(any_database, task_id, expired=True)
        _, subtasks = await wait_for(
            any_database, task_id, lambda _t, s: s[1].status == "READY", what="READY again"
        )
    assert subtasks[1].run_time == 2
    assert "can resume" in (await log_of(any_database, subtasks[1].id))[-1]
    async with running_engine(any_database):
        await wait_task(any_database, task_id, "SUCCESSFUL")


async def test_a_live_lease_is_not_reaped(any_database: Database, record_file: Path) -> None:
    async with running_engine(any_database, workers=0) as engine:
        task_id = await submit_task(any_database, CRASH, ctx(record_file))
        await asyncio.sleep(0.2)
        await _claim_as_ghost(any_database, task_id, expired=False)
        assert await engine.reap() == 0
    _, subtasks = await snapshot(any_database, task_id)
    assert (subtasks[1].status, subtasks[1].executor) == ("RUNNING", "ghost:1")


async def test_a_worker_that_lost_its_lease_stops(
    any_database: Database, record_file: Path
) -> None:
    async with running_engine(any_database):
        task_id = await submit_task(any_database, one(Stubborn), ctx(record_file))
        _, subtasks = await wait_for(any_database, task_id, running("Stubborn"))
        async with any_database.transaction(write=True) as session:  # another owner now
            await session.execute(
                update(SubtaskInstance)
                .where(SubtaskInstance.id == subtasks[0].id)
                .values(lease_token="e" * 32, executor="other:1")
            )
        for _ in range(100):
            if "hard-cancelled" in [r["event"] for r in read_records(record_file)]:
                break
            await asyncio.sleep(0.05)
    assert "hard-cancelled" in [r["event"] for r in read_records(record_file)]
    _, subtasks = await snapshot(any_database, task_id)
    assert (subtasks[0].status, subtasks[0].executor) == ("RUNNING", "other:1")


async def test_a_restart_takes_back_its_previous_boots_subtasks_at_once(
    any_database: Database, record_file: Path
) -> None:
    """Their leases run for another hour: only the boot id tells that their holder is gone.
    The live leases of another instance, and of one of the same name on another machine,
    are left alone."""
    quick = ctx(record_file, sleep_seconds=0)
    plain = await submit_task(any_database, CRASH, quick)
    resumable = await submit_task(any_database, CRASH_RESUMABLE, quick)
    for task_id in (plain, resumable):
        await _claim_as_ghost(any_database, task_id, expired=False, holder=PREVIOUS_BOOT)
    elsewhere = replace(PREVIOUS_BOOT, host="another-machine")
    others = {
        holder: await _claim_as_ghost(
            any_database,
            await submit_task(any_database, CRASH, quick),
            expired=False,
            holder=holder,
        )
        for holder in (GHOST, elsewhere)
    }
    async with running_engine(any_database) as engine:
        assert engine.holder == replace(
            PREVIOUS_BOOT, boot=engine.holder.boot, process=engine.holder.process
        )
        # Taken back by the time the engine has started.
        _, subtasks = await snapshot(any_database, plain)
        assert (subtasks[1].status, subtasks[1].error_code) == ("FAILED", "TSK10015")
        assert "executor test-node lost: it restarted" in (subtasks[1].error_message or "")
        _, subtasks = await snapshot(any_database, resumable)
        assert subtasks[1].run_time == 2
        assert subtasks[1].status in ("READY", "RUNNING", "SUCCESSFUL")
        lines = await log_of(any_database, subtasks[1].id)
        assert any(
            "executor test-node lost: it restarted; the subtask can resume" in line
            for line in lines
        )
        await wait_task(any_database, resumable, "SUCCESSFUL")
        await wait_task(any_database, plain, "FAILED")
        assert await engine.reap() == 0
    for holder, held in others.items():
        _, subtasks = await snapshot(any_database, held.task_id)
        untouched = subtasks[1]
        assert (untouched.status, untouched.lease_host, untouched.lease_boot) == (
            "RUNNING",
            holder.host,
            holder.boot,
        )
        assert untouched.version == held.version


def _ended_process() -> ProcessIdentity:
    """The identity of a process of this machine that ran and has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    me = this_process()
    assert me is not None
    with open(f"/proc/{child.pid}/stat") as stat:
        started = int(stat.read().rsplit(")", 1)[1].split()[19])
    child.wait()
    return ProcessIdentity(me.machine, child.pid, started)


async def test_any_instance_of_the_machine_takes_back_what_an_ended_process_held(
    any_database: Database, record_file: Path
) -> None:
    """Held under hour-long leases by an instance of another name whose process ended: the
    engine takes them back when it starts, and at any reaping round after; a live process's
    lease (this one's, as another boot) is left alone."""
    quick = ctx(record_file, sleep_seconds=0)
    dead = Holder("127.0.0.1:8080", socket.gethostname(), "2" * 32, _ended_process())
    live = Holder("127.0.0.1:8081", socket.gethostname(), "3" * 32, this_process())
    at_start = await submit_task(any_database, CRASH_RESUMABLE, quick)
    await _claim_as_ghost(any_database, at_start, expired=False, holder=dead)
    alive = await submit_task(any_database, CRASH, quick)
    held = await _claim_as_ghost(any_database, alive, expired=False, holder=live)
    async with running_engine(any_database) as engine:
        assert engine.holder.executor != dead.executor
        _, subtasks = await snapshot(any_database, at_start)
        assert subtasks[1].run_time == 2
        lines = await log_of(any_database, subtasks[1].id)
        assert any(
            f"executor 127.0.0.1:8080 lost: its process (pid {dead.process.pid}) on this "
            "machine ended; the subtask can resume" in line
            for line in lines
        ), lines
        await wait_task(any_database, at_start, "SUCCESSFUL")

        later = await submit_task(any_database, CRASH, quick)
        await wait_for(any_database, later, lambda _t, s: s[0].status == "SUCCESSFUL")
        await _claim_as_ghost(any_database, later, expired=False, holder=dead)
        assert await engine.reap() == 1
        _, subtasks = await snapshot(any_database, later)
        assert (subtasks[1].status, subtasks[1].error_code) == ("FAILED", "TSK10015")
        assert await engine.reap() == 0
    _, subtasks = await snapshot(any_database, alive)
    assert (subtasks[1].status, subtasks[1].version) == ("RUNNING", held.version)


async def test_a_restart_beside_a_live_instance_never_runs_a_subtask_twice_at_once(
    any_database: Database, tmp_path: Path, record_file: Path
) -> None:
    """node-a and node-b each run two subtasks; node-a crashes and restarts: it resumes its
    two at once, node-b keeps its own, and no subtask's runs overlap."""
    catalog = catalog_with(GATED)
    gate = tmp_path / "gate"
    context = Context.of({"record_file": record_file, "gate_file": gate}, {"items": range(4)})
    async with running_engine(any_database, "node-b", catalog=catalog, workers=2):
        first = running_engine(any_database, "node-a", catalog=catalog, workers=2)
        engine_a = await first.__aenter__()
        task_id = await submit_task(any_database, GATED, context)
        _, before = await wait_for(
            any_database,
            task_id,
            lambda _t, subtasks: all(s.status == "RUNNING" for s in subtasks),
            what="all four running",
        )
        await crash(engine_a)
        async with running_engine(any_database, "node-a", catalog=catalog, workers=2):
            _, after = await snapshot(any_database, task_id)
            for old, new in zip(before, after, strict=True):
                if old.executor == "node-a":  # taken back: a new run, wherever it is now
                    assert new.run_time == 2
                else:  # node-b's: the same run, under the same lease
                    assert (new.status, new.executor, new.run_time, new.lease_token) == (
                        "RUNNING",
                        "node-b",
                        1,
                        old.lease_token,
                    )
            gate.touch()
            _, done = await wait_task(any_database, task_id, "SUCCESSFUL")
    assert sorted(s.run_time for s in done) == [1, 1, 2, 2]
    records = read_records(record_file)
    ends = {(r["subtask"], r["run"]): r["t"] for r in records if r["event"] == "end"}
    runs: dict[object, list[tuple[float, float]]] = {}
    for start in (r for r in records if r["event"] == "start"):
        span = (float(str(start["t"])), float(str(ends[start["subtask"], start["run"]])))
        runs.setdefault(start["subtask"], []).append(span)
    assert sorted(len(spans) for spans in runs.values()) == [1, 1, 2, 2]
    for spans in runs.values():
        for (_, ended), (started, _) in itertools.pairwise(sorted(spans)):
            assert ended <= started
