"""The task engine of one obpilot process: its lifecycle, and the dispatcher that claims
READY subtasks, starts their runs (`run`), and finishes them, moving the DAG on.

* Hand-off is event-driven: finishing a subtask, a submit, or an operation in this process
  wakes the dispatcher at once. Polling (`poll_seconds`) only finds work that other
  instances made ready, and cancels requested through them.
* Claims: FOR UPDATE SKIP LOCKED on PostgreSQL and MariaDB/MySQL; on SQLite a BEGIN
  IMMEDIATE transaction; on seekdb/OceanBase SKIP LOCKED without LIMIT over a window of
  candidate ids (`repository.ClaimMode`). In all cases the claim is the conditional
  UPDATE READY -> RUNNING on (id, status, version).
* Leases and the reaper: `leases`; at start-up, what this instance's previous boot held is
  taken back at once (`Reaper.recover`). Timeouts and cancels: `run`.
* `stop()` drains: no new claims; runs get `drain_seconds` to finish; the rest are
  stopped and handed back (resumable -> READY) or failed (TSK10013)."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from obpilot.db.engine import Database
from obpilot.engine import processes, progress, transitions
from obpilot.engine import repository as repo
from obpilot.engine.catalog import Catalog
from obpilot.engine.config import EngineConfig
from obpilot.engine.context import Cipher, Context
from obpilot.engine.leases import LeaseKeeper, MetadbClock, Reaper
from obpilot.engine.logwriter import LogWriter
from obpilot.engine.models import TaskInstance
from obpilot.engine.notifier import NOTIFIER, Signal, notify_after_commit
from obpilot.engine.repository import ClaimMode
from obpilot.engine.retrying import write_retrying
from obpilot.engine.run import Interrupt, Run, Runner, with_outputs
from obpilot.engine.states import SubtaskStatus
from obpilot.engine.transitions import Holder, Outcome, OutcomeKind
from obpilot.logging import get_logger

log = get_logger(__name__)

S = SubtaskStatus


class Claimed(NamedTuple):
    runs: list[Run]
    headers: list[repo.LogLine]  # the first line of each run's log


class Engine:
    """Runs the subtasks of `catalog`'s templates; each handler sees `resources` as
    `ctx.resources`."""

    def __init__(
        self,
        database: Database,
        config: EngineConfig,
        *,
        catalog: Catalog,
        secret_box: Cipher | None = None,
        resources: object = None,
    ) -> None:
        self.database = database
        self.config = config
        self.catalog = catalog
        self.clock = MetadbClock()
        # This process's run of instance `config.executor`: a restart is a new boot.
        self.holder = Holder(
            config.executor, socket.gethostname(), uuid.uuid4().hex, processes.this_process()
        )
        self.claim_mode = ClaimMode.IMMEDIATE
        self.runs: dict[int, Run] = {}  # subtask id -> run
        self._wake = asyncio.Event()
        self._stopping = False
        self._loops: list[asyncio.Task[None]] = []
        self._logs = LogWriter(database)
        self._log_task: asyncio.Task[None] | None = None
        self._listener: int | None = None
        self._runner = Runner(
            database,
            catalog=catalog,
            executor=config.executor,
            logs=self._logs,
            cancel_grace_seconds=config.cancel_grace_seconds,
            secret_box=secret_box,
            resources=resources,
        )
        self._leases = LeaseKeeper(database, config, self.clock, self.runs)
        self._reaper = Reaper(database, config, catalog, self.clock, self.runs, holder=self.holder)
        # Task contexts never change after submit: a small cache saves reading them per claim.
        self._task_contexts: OrderedDict[int, Context] = OrderedDict()
        self._dags: OrderedDict[int, repo.Dag] = OrderedDict()
        self._backlog = False  # READY work may be waiting for a free worker

    @property
    def executor(self) -> str:
        return self.config.executor

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.claim_mode = await self._detect_claim_mode()
        await self.clock.sync(self.database)
        recovered = await self._reaper.recover()  # first: the dispatcher then resumes them
        self._listener = NOTIFIER.subscribe(self._on_signal)
        self._log_task = asyncio.create_task(self._logs.run(), name="engine-log-writer")
        self._loops = [asyncio.create_task(self._reaper.run(), name="engine-reaper")]
        if self.config.workers > 0:
            self._loops += [
                asyncio.create_task(self._dispatch_loop(), name="engine-dispatcher"),
                asyncio.create_task(self._leases.run(), name="engine-leases"),
            ]
        log.info(
            "task engine started",
            executor=self.executor,
            workers=self.config.workers,
            claim_mode=self.claim_mode.value,
            boot=self.holder.boot,
            taken_back_from_previous_boot=recovered,
        )

    async def stop(self) -> None:
        """Drains: finishes or hands back what this instance holds, then stops."""
        self._stopping = True
        self._wake.set()
        if self.runs:
            log.info("draining subtasks", count=len(self.runs), seconds=self.config.drain_seconds)
            await self._wait_runs(self.config.drain_seconds)
        for run in list(self.runs.values()):
            run.stop(Interrupt.SHUTDOWN)
        await self._wait_runs(2 * self.config.cancel_grace_seconds + 5)
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self._logs.close()
        if self._log_task is not None:
            self._log_task.cancel()
            await asyncio.gather(self._log_task, return_exceptions=True)
        if self._listener is not None:
            NOTIFIER.unsubscribe(self._listener)
        log.info("task engine stopped", executor=self.executor)

    async def reap(self) -> int:
        """Handles other instances' expired leases now; returns how many."""
        return await self._reaper.reap()

    async def _wait_runs(self, seconds: float) -> None:
        tasks = [run.task for run in self.runs.values() if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=seconds)

    def _on_signal(self, signal: Signal) -> None:
        if signal.wake_workers:
            self._wake.set()
        for subtask_id in signal.cancels:
            run = self.runs.get(subtask_id)
            if run is not None:
                run.stop(Interrupt.CANCEL)

    async def _detect_claim_mode(self) -> ClaimMode:
        if self.database.dialect == "sqlite":
            return ClaimMode.IMMEDIATE
        if self.database.dialect == "mysql":
            async with self.database.transaction() as session:
                if "oceanbase" in (await repo.server_version(session)).lower():
                    return ClaimMode.WINDOW
        return ClaimMode.SKIP_LOCKED

    # ------------------------------------------------------------ claims

    async def _dispatch_loop(self) -> None:
        signalled = True
        while not self._stopping:
            self._wake.clear()
            try:
                await self._claim_and_start(check_first=not signalled)
            except Exception:
                log.exception("claiming subtasks failed")
                await asyncio.sleep(min(1.0, self.config.poll_seconds))
            if self._stopping:
                return
            jitter = random.uniform(0.8, 1.2)  # instances should not poll in lockstep
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds * jitter)
                signalled = True
            except TimeoutError:
                signalled = False

    async def _claim_and_start(self, *, check_first: bool) -> None:
        free = self.config.workers - len(self.runs)
        if free <= 0:
            self._backlog = True  # look again when a run ends
            return
        runs = await self._claim(free, check_first=check_first)
        for run in runs:
            self._start(run)

    def _start(self, run: Run) -> None:
        previous = self.runs.get(run.subtask.id)
        self.runs[run.subtask.id] = run
        run.task = asyncio.create_task(
            self._execute(run, previous), name=f"subtask-{run.subtask.id}"
        )

    async def _claim(self, limit: int, *, check_first: bool) -> list[Run]:
        if check_first and self.claim_mode is ClaimMode.IMMEDIATE:
            # A plain read first: idle polls should not take SQLite's write lock.
            async with self.database.transaction() as session:
                if not await repo.any_ready(session):
                    return []
        async with self.database.transaction(write=True) as session:
            headers: list[repo.LogLine] = []
            runs = await self._claim_in(session, limit, self.clock.now(), {}, headers)
            await repo.insert_log_lines(session, headers)
        return runs

    async def _claim_in(
        self,
        session: AsyncSession,
        limit: int,
        now: datetime,
        tasks: dict[int, TaskInstance],
        lines: list[repo.LogLine],
    ) -> list[Run]:
        """Claims up to `limit` READY subtasks in `session`; appends their log headers to
        `lines`. Notes whether more READY work may be left (`_backlog`)."""
        window = limit * 4 if self.claim_mode is ClaimMode.WINDOW else limit
        candidates = await repo.ready_candidates(session, limit=window, mode=self.claim_mode)
        claimed = await self._take(session, candidates, limit, now, tasks)
        lines.extend(claimed.headers)
        self._backlog = len(claimed.runs) == limit
        notify_after_commit(session, tasks={run.subtask.task_id for run in claimed.runs})
        return claimed.runs

    def _has_other_runs(self, run: Run) -> bool:
        """Whether this instance runs another subtask of the task that is still going: then
        the task is not done yet, and deriving its status can wait for that run's end. A
        run that ended decides at its own finish: counting it, two runs ending at once
        could each leave the task to the other."""
        return any(
            other.subtask.task_id == run.subtask.task_id and other is not run and other.going
            for other in self.runs.values()
        )

    async def _take(
        self,
        session: AsyncSession,
        candidates: list[repo.SubtaskRef],
        limit: int,
        now: datetime,
        tasks: dict[int, TaskInstance],
        *,
        expect: SubtaskStatus = S.READY,
    ) -> Claimed:
        """Claims up to `limit` subtasks (READY ones, or PENDING ones whose last upstream
        this worker just finished) and prepares their runs."""
        deadline = now + timedelta(seconds=self.config.lease_seconds)
        won: dict[str, repo.SubtaskRef] = {}  # by lease token
        for candidate in candidates:
            if len(won) >= limit:
                break
            token = uuid.uuid4().hex
            if await progress.claim(
                session,
                candidate,
                expect=expect,
                holder=self.holder,
                token=token,
                now=now,
                deadline=deadline,
            ):
                won[token] = candidate
        if not won:
            return Claimed([], [])
        missing = {subtask.task_id for subtask in won.values()} - set(tasks)
        if missing:
            tasks = {**tasks, **await repo.tasks_by_ids(session, missing)}
        lease_ok_until = asyncio.get_running_loop().time() + self.config.lease_margin
        claimed = Claimed([], [])
        for token, subtask in won.items():
            task = tasks[subtask.task_id]
            outputs = (
                await repo.visible_outputs(
                    session, task_id=subtask.task_id, stage=subtask.stage, subtask_id=subtask.id
                )
                if task.has_outputs
                else []
            )
            context = with_outputs(self._task_context(task), outputs, subtask.parallel_idx)
            claimed.runs.append(Run(subtask, token, context, lease_ok_until))
            header = transitions.run_header(
                subtask.operation, subtask.run_time, subtask.name, now, self.executor
            )
            claimed.headers.append(
                repo.LogLine(subtask.task_id, subtask.id, subtask.run_time, header, now)
            )
        return claimed

    async def _dag(self, session: AsyncSession, task_id: int) -> repo.Dag:
        """The task's DAG, read once (it never changes after submit): finishing a subtask
        then needs no read to find and claim the children that waited only for it."""
        found = self._dags.get(task_id)
        if found is None:
            found = await repo.dag(session, task_id)
            self._dags[task_id] = found
            while len(self._dags) > 64:
                self._dags.popitem(last=False)
        else:
            self._dags.move_to_end(task_id)
        return found

    def _task_context(self, task: TaskInstance) -> Context:
        """Task contexts never change after submit: parsed once, kept in a small cache."""
        context = self._task_contexts.get(task.id)
        if context is None:
            context = Context.load(task.context)
            self._task_contexts[task.id] = context
            while len(self._task_contexts) > 512:
                self._task_contexts.popitem(last=False)
        else:
            self._task_contexts.move_to_end(task.id)
        return context

    # ------------------------------------------------------------ running and finishing

    async def _execute(self, run: Run, previous: Run | None) -> None:
        try:
            if previous is not None and previous.task is not None:
                # The same subtask's earlier run here is still stopping: never overlap.
                await asyncio.wait({previous.task})
                self.runs[run.subtask.id] = run
            outcome = await self._runner.supervise(run)
            run.ended = True
            await self._finish(run, outcome)
        except Exception:
            log.exception("subtask run crashed", subtask_id=run.subtask.id)
        finally:
            if self.runs.get(run.subtask.id) is run:
                del self.runs[run.subtask.id]
            if self._backlog:
                self._wake.set()

    async def _finish(self, run: Run, outcome: Outcome) -> None:
        """Records how the run ended and, in the same transaction, moves the DAG on: the
        children it made READY are claimed here at once (as far as this pool has room)."""
        subtask = run.subtask
        if outcome.kind is OutcomeKind.LOST:
            log.warning("lease lost; run stopped", subtask_id=subtask.id, executor=self.executor)
            return
        lines = await self._logs.take(subtask.id)
        started: list[Run] = []

        async def attempt(session: AsyncSession) -> None:
            started.clear()
            task = await repo.get_task(session, subtask.task_id, for_update=True)
            if task is None:
                return
            now = self.clock.now()
            ended = await progress.end_run(
                session,
                subtask,
                run.token,
                outcome,
                executor=self.executor,
                took=asyncio.get_running_loop().time() - run.started,
                now=now,
            )
            if ended is None:
                return
            for key, value in run.outputs.items():
                await repo.put_output(
                    session,
                    task_id=subtask.task_id,
                    subtask_id=subtask.id,
                    stage=subtask.stage,
                    parallel_idx=subtask.parallel_idx,
                    key=key,
                    value=value,
                )
            if run.outputs:
                # put_output flagged the row; the subtasks claimed below in this same
                # transaction must see the outputs too (no second UPDATE of the row).
                set_committed_value(task, "has_outputs", True)
            batch = [*lines, *progress.logged(subtask, ended, now)]
            runnable: list[repo.SubtaskRef] = []
            more_work = ended.target == S.READY
            if ended.target == S.SUCCESSFUL:
                moved_on = await progress.after_success(
                    session,
                    subtask.id,
                    now=now,
                    executor=self.executor,
                    dag=await self._dag(session, task.id),
                )
                batch += moved_on.lines
                runnable = moved_on.runnable
            elif ended.target == S.PENDING:
                more_work = await progress.after_rolled_back(session, task.id, subtask.id) > 0
            room = self.config.workers - len(self.runs) + 1  # this run's slot is free now
            if runnable and room > 0 and not self._stopping:
                claimed = await self._take(
                    session, runnable[:room], room, now, {task.id: task}, expect=S.PENDING
                )
                started.extend(claimed.runs)
                batch += claimed.headers
            taken = {new_run.subtask.id for new_run in started}
            if await progress.make_ready(session, [r for r in runnable if r.id not in taken]):
                more_work = True
            room -= len(started)
            if self._backlog and room > 0 and not self._stopping and not more_work:
                # READY work waits for a worker (a wide fan-out): take it here, sparing
                # the dispatcher a transaction of its own.
                started.extend(await self._claim_in(session, room, now, {task.id: task}, batch))
            # Settled once nothing of the task is running here or READY (what `runnable`
            # held may have moved on already: it counts only if claimed or made READY).
            taken_here = any(new_run.subtask.task_id == task.id for new_run in started)
            if not taken_here and not more_work and not self._has_other_runs(run):
                await progress.settle_task(session, task, self.catalog, now=now)
            await repo.insert_log_lines(session, batch)
            notify_after_commit(session, wake_workers=more_work, tasks=[task.id])

        await write_retrying(
            self.database, attempt, what="finishing a subtask", seconds=self.config.lease_seconds
        )
        for new_run in started:
            self._start(new_run)
