"""Leases, judged by one clock (the metadb's): renewing this instance's, stopping runs that
lost theirs, and reaping any instance's expired ones.

* A run whose lease renewal fails for too long, or whose row no longer carries its lease
  token, is stopped (asyncio cancellation) and writes nothing more.
* Every instance reaps: a RUNNING subtask whose lease expired goes back to READY if its
  class is resumable, else to FAILED ("executor lost", TSK10015), which a retry clears
  (`transitions.lease_expired`).
* Every instance, at start-up and at every reaping round, takes back at once what a
  process of its own machine held and no longer runs, whatever that instance's name
  (`engine.processes`, `transitions.holder_ended`): obpilot restarted on another port or
  under another name resumes without waiting for the old leases to expire.
* A restarted instance (same name, `EngineConfig.executor`, on the same machine name; a
  new boot id: `transitions.Holder`) takes back what its previous boots held at start-up,
  also where the machine cannot tell (the machine itself restarted, or no /proc), by the
  same rule (`transitions.previous_boot`). Other machines' leases, and live processes',
  are left alone until they expire: hence instance names must be unique among live
  instances."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.engine import Database
from obpilot.engine import processes, progress, transitions
from obpilot.engine import repository as repo
from obpilot.engine.catalog import Catalog
from obpilot.engine.config import EngineConfig
from obpilot.engine.models import SubtaskInstance
from obpilot.engine.progress import HolderGone
from obpilot.engine.retrying import write_retrying
from obpilot.engine.run import Interrupt, Run
from obpilot.engine.states import HELD_SUBTASK_STATUSES, SubtaskStatus
from obpilot.engine.transitions import Holder
from obpilot.logging import get_logger

log = get_logger(__name__)


class MetadbClock:
    """Leases are judged by one clock, the metadb's: this is the local clock corrected by
    the measured offset to the metadb (SQLite: the local clock)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sync(self, database: Database) -> None:
        async with database.transaction() as session:
            before = datetime.now(UTC)
            remote = await repo.database_utc_now(session, database.dialect)
            after = datetime.now(UTC)
        if remote is not None:
            remote = remote.replace(tzinfo=UTC) if remote.tzinfo is None else remote
            self.offset = remote - (before + (after - before) / 2)


class LeaseKeeper:
    """Renews the leases of this instance's runs every heartbeat; between heartbeats (every
    poll interval) it only reads the held rows, to notice cancels requested through other
    instances."""

    def __init__(
        self,
        database: Database,
        config: EngineConfig,
        clock: MetadbClock,
        runs: Mapping[int, Run],
    ) -> None:
        self.database = database
        self.config = config
        self.clock = clock
        self.runs = runs
        self._last_renewal = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = min(self.config.poll_seconds, self.config.heartbeat_seconds)
        while True:
            await asyncio.sleep(tick)
            runs = {run.token: run for run in self.runs.values()}
            if runs:
                try:
                    await self.check(
                        runs,
                        renew=loop.time() - self._last_renewal
                        >= self.config.heartbeat_seconds - tick / 2,
                    )
                except Exception:
                    log.warning("lease check failed", exc_info=True)
            now = loop.time()
            for run in runs.values():
                if now > run.lease_ok_until:
                    log.warning("lease not renewed in time; stopping", subtask_id=run.subtask.id)
                    run.stop(Interrupt.LOST)

    async def check(self, runs: dict[str, Run], *, renew: bool) -> None:
        """Stops the runs (by lease token) whose rows no longer carry their lease, or are
        being cancelled; with `renew`, extends the others' leases first."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        if renew:
            deadline = self.clock.now() + timedelta(seconds=self.config.lease_seconds)
            async with self.database.transaction(write=True) as session:
                rows = await repo.renew_leases(session, list(runs), deadline=deadline)
            self._last_renewal = started
        else:
            async with self.database.transaction() as session:
                rows = await repo.held_rows(session, list(runs))
        for token, run in runs.items():
            row = rows.get(token)
            if row is None or row.status not in HELD_SUBTASK_STATUSES:
                run.stop(Interrupt.LOST)
            elif row.status == SubtaskStatus.CANCELING:
                run.stop(Interrupt.CANCEL)
            elif renew:
                run.lease_ok_until = started + self.config.lease_margin


class Reaper:
    """Takes back subtasks whose executor is gone: any instance's whose lease expired
    (this instance's live runs are the lease keeper's), and, at start-up, those that this
    instance's previous boots held. Both by the one rule of `transitions.executor_lost`."""

    def __init__(
        self,
        database: Database,
        config: EngineConfig,
        catalog: Catalog,
        clock: MetadbClock,
        runs: Mapping[int, Run],
        *,
        holder: Holder,
    ) -> None:
        self.database = database
        self.config = config
        self.catalog = catalog
        self.clock = clock
        self.runs = runs
        self.holder = holder

    async def run(self) -> None:
        interval = max(min(self.config.poll_seconds, self.config.lease_seconds / 3), 0.2)
        synced = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                if asyncio.get_running_loop().time() - synced > 60:
                    await self.clock.sync(self.database)
                    synced = asyncio.get_running_loop().time()
                await self.reap()
            except Exception:
                log.exception("reaping expired leases failed")

    async def reap(self) -> int:
        """Handles RUNNING/CANCELING subtasks whose lease expired, and those whose holder
        on this machine ended; returns how many."""
        async with self.database.transaction() as session:
            expired = await repo.expired_leases(session, now=self.clock.now())
        mine = {run.token for run in self.runs.values()}
        # Our own live runs are left to their lease check, which stops them if need be.
        stale = [row for row in expired if row.lease_token not in mine]
        return await self._take_back(stale, transitions.lease_expired) + await self._ended()

    async def recover(self) -> int:
        """Takes back at once what this instance's previous boots held (that process is
        gone: this instance has its name) and what ended processes of this machine held;
        returns how many."""
        holder = self.holder
        async with self.database.transaction() as session:
            held = await repo.previous_boot_leases(
                session, executor=holder.executor, host=holder.host, boot=holder.boot
            )
        previous = partial(transitions.previous_boot, holder=holder)
        return await self._take_back(held, previous) + await self._ended()

    async def _ended(self) -> int:
        """Takes back the subtasks held by processes of this machine that have ended."""
        if self.holder.process is None:
            return 0
        async with self.database.transaction() as session:
            held = await repo.machine_leases(
                session, machine=self.holder.process.machine, boot=self.holder.boot
            )
        holders = {transitions.lease_process(row) for row in held}
        ended = frozenset(p for p in holders if p is not None and processes.has_ended(p))
        if not ended:
            return 0
        gone = [row for row in held if transitions.lease_process(row) in ended]
        judge = partial(transitions.holder_ended, holder=self.holder, ended=ended)
        return await self._take_back(gone, judge)

    async def _take_back(self, rows: list[SubtaskInstance], holder_gone: HolderGone) -> int:
        count = 0
        for row in rows:
            reaped = False

            async def attempt(session: AsyncSession, row: SubtaskInstance = row) -> None:
                nonlocal reaped
                reaped = await self._take_back_one(session, row, holder_gone)

            await write_retrying(self.database, attempt, what="taking back a subtask")
            count += reaped
        return count

    async def _take_back_one(
        self, session: AsyncSession, stale: SubtaskInstance, holder_gone: HolderGone
    ) -> bool:
        task = await repo.get_task(session, stale.task_id, for_update=True)
        if task is None:
            return False
        reaped = await progress.reap(
            session, task, stale, self.catalog, holder_gone=holder_gone, now=self.clock.now()
        )
        if reaped is None:
            return False
        log.warning(
            "took back a subtask whose executor is gone",
            subtask_id=stale.id,
            to=reaped.target.value,
            executor=stale.executor,
            reason=reaped.log,
        )
        return True
