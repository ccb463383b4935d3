"""The worker pool of one obpilot process: claims READY subtasks, runs their handlers with
a lease renewed by heartbeat, finishes them, and reaps other instances' expired leases.

* Hand-off is event-driven: finishing a subtask, a submit, or an operation in this process
  wakes the dispatcher at once. Polling (`poll_seconds`) only finds work that other
  instances made ready, and cancels requested through them.
* Claims: FOR UPDATE SKIP LOCKED on PostgreSQL and MariaDB/MySQL; on SQLite a BEGIN
  IMMEDIATE transaction; on seekdb/OceanBase SKIP LOCKED without LIMIT over a window of
  candidate ids (there LIMIT with SKIP LOCKED returned no rows while the first rows were
  locked). In all cases the claim is the conditional UPDATE READY -> RUNNING on (id,
  status, version).
* No metadb transaction is open while a handler runs.
* A run whose lease renewal fails for too long, or whose row no longer carries its lease
  token, is stopped (asyncio cancellation) and writes nothing more.
* Every instance reaps: a RUNNING subtask whose lease expired goes back to READY if its
  class is resumable, else to FAILED ("executor lost", TSK10015), which a retry clears.
* Timeouts fail the subtask (TSK10012); cancel stops it cooperatively (`ctx.cancelled`,
  `ctx.check_cancelled()`, `ctx.sleep()`), then by asyncio cancellation after
  `cancel_grace_seconds`, and fails it (TSK10014).
* `stop()` drains: no new claims; runs get `drain_seconds` to finish; the rest are
  stopped and handed back (resumable -> READY) or failed (TSK10013)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine import service
from obpilot.engine.context import Cipher, Context, is_sensitive
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.notifier import NOTIFIER, Signal, notify_after_commit
from obpilot.engine.states import (
    HELD_SUBTASK_STATUSES,
    FailureCode,
    SubtaskOperation,
    SubtaskStatus,
)
from obpilot.engine.subtask import (
    SubtaskCancelled,
    SubtaskContext,
    SubtaskError,
    subtask_class,
)
from obpilot.logging import get_logger

log = get_logger(__name__)

S = SubtaskStatus
T = TypeVar("T")
HELD = {s.value for s in HELD_SUBTASK_STATUSES}


@dataclass(frozen=True)
class EngineConfig:
    executor: str  # this instance's name, shown as `executor`; unique among live instances
    workers: int = 8  # subtasks run at once by this instance; 0: no worker pool
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 2.0
    cancel_grace_seconds: float = 5.0
    drain_seconds: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise ValueError("the heartbeat interval must be positive and shorter than the lease")
        if self.poll_seconds <= 0:
            raise ValueError("the poll interval must be positive")


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


@dataclass(frozen=True)
class Outcome:
    kind: str  # success | failure | cancelled | timeout | lost | shutdown
    message: str = ""
    code: str | None = None


@dataclass
class Run:
    subtask_id: int
    task_id: int
    token: str
    name: str
    class_name: str
    operation: SubtaskOperation
    run_time: int
    timeout: int
    stage: int
    parallel_idx: int
    parallel_key: str | None
    resumable: bool
    context: Context
    lease_ok_until: float
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    interrupt: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    handler: asyncio.Task[None] | None = None
    task: asyncio.Task[None] | None = None
    started: float = field(default_factory=lambda: asyncio.get_running_loop().time())

    def stop(self, reason: str) -> None:
        """First reason wins: cancel, lost or shutdown."""
        self.cancel.set()
        if not self.interrupt.done():
            self.interrupt.set_result(reason)


class LogWriter:
    """Writes handlers' log lines to subtask_log as they come (a short transaction per
    batch), so a running subtask's log can be read while it runs."""

    COALESCE_SECONDS = 0.05

    def __init__(self, database: Database) -> None:
        self.database = database
        self.pending: list[repo.LogLine] = []
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.closed = False

    def add(self, line: repo.LogLine) -> None:
        self.pending.append(line)
        self.ready.set()

    async def take(self, subtask_id: int) -> list[repo.LogLine]:
        """A finishing run's unwritten lines (written with its final transition instead)."""
        async with self.lock:
            mine = [line for line in self.pending if line.subtask_id == subtask_id]
            self.pending = [line for line in self.pending if line.subtask_id != subtask_id]
            return mine

    async def run(self) -> None:
        while not self.closed or self.pending:
            await self.ready.wait()
            await asyncio.sleep(self.COALESCE_SECONDS)
            self.ready.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            batch, self.pending = self.pending, []
            if not batch:
                return
            try:
                async with self.database.transaction(write=True) as session:
                    await repo.insert_log_lines(session, batch)
                    notify_after_commit(session, tasks={line.task_id for line in batch})
            except DBAPIError:
                log.warning("writing subtask log lines failed; will retry", exc_info=True)
                self.pending = batch + self.pending
                self.ready.set()
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        self.closed = True
        self.ready.set()
        await self.flush()


class Engine:
    def __init__(
        self,
        database: Database,
        config: EngineConfig,
        *,
        secret_box: Cipher | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        self.database = database
        self.config = config
        self.secret_box = secret_box
        self.resources = resources or {}
        self.clock = MetadbClock()
        self.claim_mode = "immediate"  # immediate (SQLite) | skip_locked | window (OceanBase)
        self.runs: dict[int, Run] = {}  # subtask id -> run
        self._wake = asyncio.Event()
        self._stopping = False
        self._loops: list[asyncio.Task[None]] = []
        self._logs = LogWriter(database)
        self._log_task: asyncio.Task[None] | None = None
        self._listener: int | None = None
        # Task contexts never change after submit: a small cache saves reading them per claim.
        self._task_contexts: OrderedDict[int, Context] = OrderedDict()
        self._dags: OrderedDict[int, repo.Dag] = OrderedDict()
        self._last_renewal = 0.0
        self._backlog = False  # READY work may be waiting for a free worker

    @property
    def executor(self) -> str:
        return self.config.executor

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.claim_mode = await self._detect_claim_mode()
        await self.clock.sync(self.database)
        service._LocalInstance.name = self.executor
        self._listener = NOTIFIER.subscribe(self._on_signal)
        self._log_task = asyncio.create_task(self._logs.run(), name="engine-log-writer")
        self._loops = [asyncio.create_task(self._reaper_loop(), name="engine-reaper")]
        if self.config.workers > 0:
            self._loops += [
                asyncio.create_task(self._dispatch_loop(), name="engine-dispatcher"),
                asyncio.create_task(self._lease_loop(), name="engine-leases"),
            ]
        log.info(
            "task engine started",
            executor=self.executor,
            workers=self.config.workers,
            claim_mode=self.claim_mode,
        )

    async def stop(self) -> None:
        """Drains: finishes or hands back what this instance holds, then stops."""
        self._stopping = True
        self._wake.set()
        if self.runs:
            log.info("draining subtasks", count=len(self.runs), seconds=self.config.drain_seconds)
            await self._wait_runs(self.config.drain_seconds)
        for run in list(self.runs.values()):
            run.stop("shutdown")
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

    async def _wait_runs(self, seconds: float) -> None:
        tasks = [run.task for run in self.runs.values() if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=seconds)

    def wake(self) -> None:
        self._wake.set()

    def _on_signal(self, signal: Signal) -> None:
        if signal.wake_workers:
            self._wake.set()
        for subtask_id in signal.cancels:
            run = self.runs.get(subtask_id)
            if run is not None:
                run.stop("cancel")

    async def _detect_claim_mode(self) -> str:
        if self.database.dialect == "sqlite":
            return "immediate"
        if self.database.dialect == "mysql":
            async with self.database.transaction() as session:
                if "oceanbase" in (await repo.server_version(session)).lower():
                    return "window"
        return "skip_locked"

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
        previous = self.runs.get(run.subtask_id)
        self.runs[run.subtask_id] = run
        run.task = asyncio.create_task(
            self._execute(run, previous), name=f"subtask-{run.subtask_id}"
        )

    async def _claim(self, limit: int, *, check_first: bool) -> list[Run]:
        if check_first and self.claim_mode == "immediate":
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
        rows = await repo.ready_candidates(
            session,
            limit=limit if self.claim_mode != "window" else limit * 4,
            locking={"immediate": "none"}.get(self.claim_mode, self.claim_mode),
        )
        candidates = [repo.SubtaskRef.of(row) for row in rows]
        runs, headers = await self._take(session, candidates, limit, now, tasks)
        lines.extend(headers)
        self._backlog = len(runs) == limit
        notify_after_commit(session, tasks={run.task_id for run in runs})
        return runs

    def _has_other_runs(self, run: Run) -> bool:
        """Whether this instance runs another subtask of the task: then the task is not
        done yet, and deriving its status can wait for that run to end."""
        return any(
            other.task_id == run.task_id and other is not run and not other.interrupt.done()
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
    ) -> tuple[list[Run], list[repo.LogLine]]:
        """Claims up to `limit` subtasks (conditional UPDATE READY -> RUNNING on id and
        version; PENDING -> RUNNING for those whose last upstream this worker just finished)
        and prepares their runs; returns the runs and their log header lines."""
        deadline = now + timedelta(seconds=self.config.lease_seconds)
        won: list[tuple[repo.SubtaskRef, str]] = []
        for candidate in candidates:
            if len(won) >= limit:
                break
            token = uuid.uuid4().hex
            # A ref from the task's DAG (version -1) is a first run: fenced by that instead.
            known = candidate.version >= 0
            if await repo.transition_subtask(
                session,
                candidate.id,
                expect=expect,
                to=S.RUNNING,
                version=candidate.version if known else None,
                guard=None if known else _first_run(candidate),
                values={
                    "upstreams_left": 0,
                    "executor": self.executor,
                    "lease_token": token,
                    "lease_deadline": deadline,
                    "start_time": now,
                    "finish_time": None,
                    "error_code": None,
                    "error_message": None,
                },
            ):
                won.append((candidate, token))
        if not won:
            return [], []
        missing = {c.task_id for c, _ in won} - set(tasks)
        if missing:
            tasks = {**tasks, **await repo.tasks_by_ids(session, missing)}
        lease_ok_until = asyncio.get_running_loop().time() + self._lease_margin()
        runs: list[Run] = []
        headers: list[repo.LogLine] = []
        for ref, token in won:
            task = tasks[ref.task_id]
            outputs = (
                await repo.visible_outputs(
                    session, task_id=ref.task_id, stage=ref.stage, subtask_id=ref.id
                )
                if task.has_outputs
                else []
            )
            operation = SubtaskOperation(ref.operation)
            runs.append(
                Run(
                    subtask_id=ref.id,
                    task_id=ref.task_id,
                    token=token,
                    name=ref.name,
                    class_name=ref.class_name,
                    operation=operation,
                    run_time=ref.run_time,
                    timeout=ref.timeout,
                    stage=ref.stage,
                    parallel_idx=ref.parallel_idx,
                    parallel_key=ref.parallel_key,
                    resumable=ref.resumable,
                    context=_with_outputs(self._task_context(task), outputs, ref.parallel_idx),
                    lease_ok_until=lease_ok_until,
                )
            )
            headers.append(
                repo.LogLine(
                    ref.task_id,
                    ref.id,
                    ref.run_time,
                    f"{{{operation.value}}}{{{service.stamp(now)}}} runTime={ref.run_time} "
                    f"executor={self.executor} {ref.name}",
                    now,
                )
            )
        return runs, headers

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

    def _lease_margin(self) -> float:
        """How long a run may go on without a renewal: stop before others may reap it."""
        return self.config.lease_seconds - max(0.5, self.config.lease_seconds * 0.1)

    # ------------------------------------------------------------ running

    async def _execute(self, run: Run, previous: Run | None) -> None:
        try:
            if previous is not None and previous.task is not None:
                # The same subtask's earlier run here is still stopping: never overlap.
                await asyncio.wait({previous.task})
                self.runs[run.subtask_id] = run
            outcome = await self._supervise(run)
            await self._finish(run, outcome)
        except Exception:
            log.exception("subtask run crashed", subtask_id=run.subtask_id)
        finally:
            if self.runs.get(run.subtask_id) is run:
                del self.runs[run.subtask_id]
            if self._backlog:
                self._wake.set()

    def _context_for(self, run: Run) -> SubtaskContext:
        context = run.context.decrypted(self.secret_box)
        secrets = context.secret_values()

        def write_line(line: str) -> None:
            if run.task is None or run.task.done():
                log.warning("log line after the subtask ended", subtask_id=run.subtask_id)
                return
            for secret in secrets:
                line = line.replace(secret, "******")
            moment = utcnow()
            self._logs.add(
                repo.LogLine(
                    run.task_id,
                    run.subtask_id,
                    run.run_time,
                    service.log_line(moment, line),
                    moment,
                )
            )

        async def publish(key: str, value: str | list[str]) -> None:
            stored: str | list[str] = value
            if is_sensitive(key) and self.secret_box is not None:
                box = self.secret_box
                stored = (
                    [box.encrypt(v) for v in value]
                    if isinstance(value, list)
                    else box.encrypt(value)
                )
            async with self.database.transaction(write=True) as session:
                # The task row first, as every transaction that changes a task's rows does.
                await repo.get_task(session, run.task_id, for_update=True)
                if not await repo.holds_lease(session, run.subtask_id, run.token):
                    raise SubtaskCancelled(f"subtask {run.subtask_id} no longer holds its lease")
                await repo.put_output(
                    session,
                    task_id=run.task_id,
                    subtask_id=run.subtask_id,
                    stage=run.stage,
                    parallel_idx=run.parallel_idx,
                    key=key,
                    value=stored,
                )
            update = (
                Context(list_map={key: value}) if isinstance(value, list) else Context({key: value})
            )
            ctx.context = ctx.context.merged(update)

        ctx = SubtaskContext(
            task_id=run.task_id,
            subtask_id=run.subtask_id,
            name=run.name,
            run_time=run.run_time,
            operation=run.operation,
            executor=self.executor,
            context=context,
            parallel_key=run.parallel_key,
            database=self.database,
            resources=self.resources,
            _log=write_line,
            _publish=publish,
            _cancel=run.cancel,
        )
        return ctx

    async def _supervise(self, run: Run) -> Outcome:
        cls = subtask_class(run.class_name)
        if cls is None:
            return Outcome(
                "failure",
                f"no subtask class {run.class_name!r} is registered on executor {self.executor}",
            )
        run.started = asyncio.get_running_loop().time()
        instance = cls()
        ctx = self._context_for(run)
        call = instance.rollback if run.operation == SubtaskOperation.ROLLBACK else instance.execute
        handler = asyncio.create_task(call(ctx), name=f"handler-{run.subtask_id}")
        run.handler = handler
        timed_out = False
        try:
            async with asyncio.timeout(run.timeout):
                waiters: set[asyncio.Future[Any]] = {handler, run.interrupt}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            timed_out = True
        if handler.done():
            return self._outcome_of(handler, run)
        reason = "timeout" if timed_out else run.interrupt.result()
        grace = self.config.cancel_grace_seconds
        if reason == "cancel":
            run.cancel.set()
            await asyncio.wait({handler}, timeout=grace)  # cooperative stop first
        if not handler.done():
            handler.cancel()
            await asyncio.wait({handler}, timeout=grace)
        if not handler.done():
            log.warning("handler ignored cancellation", subtask_id=run.subtask_id)
        if handler.done() and not handler.cancelled():
            handler.exception()  # retrieved: how it ended no longer matters
        if reason == "timeout":
            return Outcome(
                "timeout",
                f"timed out after {run.timeout} s ({FailureCode.TIMEOUT}); the handler was stopped",
                FailureCode.TIMEOUT,
            )
        return Outcome("cancelled" if reason == "cancel" else reason)

    def _outcome_of(self, handler: asyncio.Task[None], run: Run) -> Outcome:
        if handler.cancelled():
            return Outcome(_interrupt_reason(run))
        error = handler.exception()
        if error is None:
            return Outcome("success")
        if isinstance(error, SubtaskCancelled):
            return Outcome(_interrupt_reason(run))
        if isinstance(error, SubtaskError):
            return Outcome("failure", error.message, error.code)
        log.error(
            "subtask handler raised",
            subtask_id=run.subtask_id,
            class_name=run.class_name,
            exc_info=error,
        )
        return Outcome("failure", f"{type(error).__name__}: {error}")

    # ------------------------------------------------------------ finishing

    async def _finish(self, run: Run, outcome: Outcome) -> None:
        """Records how the run ended and, in the same transaction, moves the DAG on: the
        children it made READY are claimed here at once (as far as this pool has room)."""
        if outcome.kind == "lost":
            log.warning(
                "lease lost; run stopped", subtask_id=run.subtask_id, executor=self.executor
            )
            return
        lines = await self._logs.take(run.subtask_id)
        started: list[Run] = []

        async def attempt(session: AsyncSession) -> None:
            started.clear()
            task = await repo.get_task(session, run.task_id, for_update=True)
            if task is None:
                return
            now = self.clock.now()
            kind = outcome.kind
            ending = self._ending(run, kind, outcome, now)
            if not await self._end_run(session, run, S.RUNNING, ending):
                row = await repo.get_subtask(session, run.subtask_id)
                if row is None or row.lease_token != run.token or row.status != S.CANCELING:
                    log.warning("run no longer owns its subtask", subtask_id=run.subtask_id)
                    return
                if kind == "success":
                    kind = "cancelled"  # the cancel came first; the run's work is not trusted
                ending = self._ending(run, kind, outcome, now)
                if not await self._end_run(session, run, S.CANCELING, ending):
                    return
            to, _, message, _ = ending
            batch = [
                *lines,
                repo.LogLine(
                    run.task_id, run.subtask_id, run.run_time, service.log_line(now, message), now
                ),
            ]
            runnable: list[repo.SubtaskRef] = []
            more_work = to == S.READY
            if to == S.SUCCESSFUL:
                progress = await service.after_success(
                    session,
                    run.subtask_id,
                    now=now,
                    executor=self.executor,
                    dag=await self._dag(session, task.id),
                )
                batch += progress.lines
                runnable = progress.runnable
            elif to == S.PENDING:
                more_work = await service.after_rolled_back(session, task.id, run.subtask_id) > 0
            room = self.config.workers - len(self.runs) + 1  # this run's slot is free now
            if runnable and room > 0 and not self._stopping:
                runs, headers = await self._take(
                    session, runnable[:room], room, now, {task.id: task}, expect=S.PENDING
                )
                started.extend(runs)
                batch += headers
            taken = {new_run.subtask_id for new_run in started}
            if await service.make_ready(session, [r for r in runnable if r.id not in taken]):
                more_work = True
            room -= len(started)
            if self._backlog and room > 0 and not self._stopping and not more_work:
                # READY work waits for a worker (a wide fan-out): take it here, sparing
                # the dispatcher a transaction of its own.
                runs = await self._claim_in(session, room, now, {task.id: task}, batch)
                started.extend(runs)
            if not runnable and not more_work and not self._has_other_runs(run):
                await service.settle_task(session, task, now=now)
            await repo.insert_log_lines(session, batch)
            notify_after_commit(session, wake_workers=more_work, tasks=[task.id])

        await self._retrying(attempt, what="finishing a subtask", seconds=self.config.lease_seconds)
        for new_run in started:
            self._start(new_run)

    async def _end_run(
        self,
        session: AsyncSession,
        run: Run,
        expect: SubtaskStatus,
        ending: tuple[SubtaskStatus, dict[str, Any], str, bool],
    ) -> bool:
        to, values, _, bump = ending
        return await repo.transition_subtask(
            session,
            run.subtask_id,
            expect=expect,
            to=to,
            lease_token=run.token,
            values={**values, "lease_token": None, "lease_deadline": None},
            bump_run_time=bump,
        )

    def _ending(
        self, run: Run, kind: str, outcome: Outcome, now: datetime
    ) -> tuple[S, dict[str, Any], str, bool]:
        took = asyncio.get_running_loop().time() - run.started
        rolling_back = run.operation == SubtaskOperation.ROLLBACK
        if kind == "success":
            if rolling_back:
                return S.PENDING, {"finish_time": now}, "rollback finished: undone", False
            return (
                S.SUCCESSFUL,
                {"finish_time": now},
                f"finished successfully in {took:.3f} s",
                False,
            )
        if kind == "shutdown":
            if run.resumable:
                return (
                    S.READY,
                    {"finish_time": None},
                    f"handed back: executor {self.executor} is shutting down; "
                    "the subtask resumes on the next free worker",
                    True,
                )
            message = (
                f"interrupted ({FailureCode.INTERRUPTED}): executor {self.executor} shut down "
                "before the subtask finished, and it cannot resume; retry it"
            )
            return S.FAILED, _failed(now, FailureCode.INTERRUPTED, message), message, False
        if kind == "cancelled":
            message = f"cancelled ({FailureCode.CANCELLED}); the handler stopped"
            return S.FAILED, _failed(now, FailureCode.CANCELLED, message), message, False
        if kind == "timeout":
            return S.FAILED, _failed(now, outcome.code, outcome.message), outcome.message, False
        message = outcome.message or "failed"
        return S.FAILED, _failed(now, outcome.code, message), f"failed: {message}", False

    async def _retrying(
        self,
        body: Callable[[AsyncSession], Awaitable[None]],
        *,
        what: str,
        seconds: float = 10.0,
    ) -> None:
        """Runs `body` in a write transaction, again after a database error (a deadlock, a
        dropped connection) until `seconds` have passed."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + seconds
        delay = 0.05
        while True:
            try:
                async with self.database.transaction(write=True) as session:
                    await body(session)
                return
            except DBAPIError:
                if loop.time() + delay > give_up:
                    log.exception("giving up", what=what)
                    return
                log.warning("database error; retrying", what=what, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------ leases

    async def _lease_loop(self) -> None:
        """Renews leases every heartbeat; between heartbeats (every poll interval) it only
        reads the held rows, to notice cancels requested through other instances."""
        loop = asyncio.get_running_loop()
        tick = min(self.config.poll_seconds, self.config.heartbeat_seconds)
        while True:
            await asyncio.sleep(tick)
            runs = {run.token: run for run in self.runs.values()}
            if runs:
                try:
                    await self._check_leases(
                        runs,
                        renew=loop.time() - self._last_renewal
                        >= self.config.heartbeat_seconds - tick / 2,
                    )
                except Exception:
                    log.warning("lease check failed", exc_info=True)
            now = loop.time()
            for run in runs.values():
                if now > run.lease_ok_until:
                    log.warning("lease not renewed in time; stopping", subtask_id=run.subtask_id)
                    run.stop("lost")

    async def _check_leases(self, runs: dict[str, Run], *, renew: bool) -> None:
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
            if row is None or row[1] not in HELD:
                run.stop("lost")
            elif row[1] == S.CANCELING:
                run.stop("cancel")
            elif renew:
                run.lease_ok_until = started + self._lease_margin()

    # ------------------------------------------------------------ reaper

    async def _reaper_loop(self) -> None:
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
        """Handles RUNNING/CANCELING subtasks whose lease expired; returns how many."""
        now = self.clock.now()
        async with self.database.transaction() as session:
            expired = await repo.expired_leases(session, now=now)
        mine = {run.token for run in self.runs.values()}
        count = 0
        for row in expired:
            if row.lease_token in mine:
                continue  # our own live run; its lease check stops it if need be
            reaped = False

            async def attempt(session: AsyncSession, row: SubtaskInstance = row) -> None:
                nonlocal reaped
                reaped = await self._reap_one(session, row)

            await self._retrying(attempt, what="reaping an expired lease")
            count += reaped
        return count

    async def _reap_one(self, session: AsyncSession, stale: SubtaskInstance) -> bool:
        task = await repo.get_task(session, stale.task_id, for_update=True)
        row = await repo.get_subtask(session, stale.id)
        if task is None or row is None or row.version != stale.version or row.status not in HELD:
            return False
        now = self.clock.now()
        if row.lease_deadline is not None and row.lease_deadline >= now:
            return False
        lost = (
            f"executor {row.executor} lost: its lease expired at "
            f"{service.stamp(row.lease_deadline) if row.lease_deadline else '(never set)'}"
        )
        bump = False
        if row.status == S.CANCELING:
            to = S.FAILED
            message = f"cancelled ({FailureCode.CANCELLED}); {lost}"
            values = _failed(now, FailureCode.CANCELLED, message)
        elif row.resumable:
            to, bump = S.READY, True
            message = f"{lost}; the subtask can resume, so it is READY again"
            values = {"finish_time": None}
        else:
            to = S.FAILED
            message = (
                f"{lost} ({FailureCode.EXECUTOR_LOST}) while the subtask was running; "
                "it cannot resume on its own: retry it to run it again"
            )
            values = _failed(now, FailureCode.EXECUTOR_LOST, message)
        values.update(lease_token=None, lease_deadline=None)
        if not await repo.transition_subtask(
            session,
            row.id,
            expect=S(row.status),
            to=to,
            version=row.version,
            values=values,
            bump_run_time=bump,
        ):
            return False
        await repo.insert_log_lines(
            session,
            [repo.LogLine(row.task_id, row.id, row.run_time, service.log_line(now, message), now)],
        )
        await service.settle_task(session, task, now=now)
        notify_after_commit(session, wake_workers=to == S.READY, tasks=[task.id])
        log.warning(
            "reaped an expired lease", subtask_id=row.id, to=to.value, executor=row.executor
        )
        return True


def _first_run(ref: repo.SubtaskRef) -> ColumnElement[bool]:
    return and_(
        SubtaskInstance.run_time == ref.run_time, SubtaskInstance.operation == ref.operation
    )


def _failed(now: datetime, code: str | None, message: str) -> dict[str, Any]:
    return {"finish_time": now, "error_code": code, "error_message": message}


def _interrupt_reason(run: Run) -> str:
    """The outcome kind of a handler that stopped because it was asked to."""
    reason = run.interrupt.result() if run.interrupt.done() else "cancel"
    return "cancelled" if reason == "cancel" else reason


def _with_outputs(base: Context, outputs: list[repo.Output], parallel_idx: int) -> Context:
    strings = dict(base.string_map)
    lists = {k: list(v) for k, v in base.list_map.items()}
    for output in outputs:
        if isinstance(output.value, list):
            lists[output.key] = output.value
        else:
            strings[output.key] = output.value
    return Context(strings, lists, parallel_idx)
