"""Running one claimed subtask: the handler under supervision (its timeout; a cancel, a
lost lease or a shutdown stopping it), the context it sees, and how it ended (`Outcome`).
No metadb transaction is open while a handler runs; its own short ones are for publishing
outputs, under its lease."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine import transitions
from obpilot.engine.catalog import Catalog
from obpilot.engine.context import Cipher, Context, is_sensitive
from obpilot.engine.logwriter import LogWriter
from obpilot.engine.states import SubtaskOperation
from obpilot.engine.subtask import SubtaskCancelled, SubtaskContext, SubtaskError
from obpilot.engine.transitions import Outcome, OutcomeKind
from obpilot.logging import get_logger

log = get_logger(__name__)


class Interrupt(Enum):
    """Why a run is asked to stop before its handler returns."""

    CANCEL = auto()  # a cancel was requested
    LOST = auto()  # its lease was lost
    SHUTDOWN = auto()  # this executor is shutting down

    @property
    def outcome(self) -> OutcomeKind:
        return _INTERRUPTED[self]


_INTERRUPTED = {
    Interrupt.CANCEL: OutcomeKind.CANCELLED,
    Interrupt.LOST: OutcomeKind.LOST,
    Interrupt.SHUTDOWN: OutcomeKind.SHUTDOWN,
}


@dataclass
class Run:
    """One run of a subtask claimed by this instance, under the lease `token`."""

    subtask: repo.SubtaskRef
    token: str
    context: Context  # the task's, plus the outputs this subtask sees
    lease_ok_until: float  # loop time: past it without a renewal, the run stops
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    interrupt: asyncio.Future[Interrupt] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    handler: asyncio.Task[None] | None = None
    task: asyncio.Task[None] | None = None
    started: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    ended: bool = False  # how it ended is known: it is being (or has been) finished
    #: What the handler published (key -> value as stored), written with the run's end.
    outputs: dict[str, str | list[str]] = field(default_factory=dict)

    def stop(self, reason: Interrupt) -> None:
        """First reason wins."""
        self.cancel.set()
        if not self.interrupt.done():
            self.interrupt.set_result(reason)

    @property
    def going(self) -> bool:
        """It has not ended, and nothing asked it to stop."""
        return not self.ended and not self.interrupt.done()

    def interrupted(self) -> OutcomeKind:
        """The outcome of a handler that stopped because it was asked to."""
        reason = self.interrupt.result() if self.interrupt.done() else Interrupt.CANCEL
        return reason.outcome


def with_outputs(base: Context, outputs: list[repo.Output], parallel_idx: int) -> Context:
    """The task's context with the outputs a subtask sees (later ones win)."""
    strings = dict(base.string_map)
    lists = {k: list(v) for k, v in base.list_map.items()}
    for output in outputs:
        if isinstance(output.value, list):
            lists[output.key] = output.value
        else:
            strings[output.key] = output.value
    return Context(strings, lists, parallel_idx)


class Runner:
    """Runs handlers for one engine: the context each sees, and supervision."""

    def __init__(
        self,
        database: Database,
        *,
        catalog: Catalog,
        executor: str,
        logs: LogWriter,
        cancel_grace_seconds: float,
        secret_box: Cipher | None,
        resources: object,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.executor = executor
        self.logs = logs
        self.cancel_grace_seconds = cancel_grace_seconds
        self.secret_box = secret_box
        self.resources = resources

    async def supervise(self, run: Run) -> Outcome:
        """Runs the handler (its rollback for a ROLLBACK run) until it returns, times out,
        or the run is stopped; a cancel stops it cooperatively first, then by asyncio
        cancellation after the grace period."""
        subtask = run.subtask
        cls = self.catalog.subtask_class(subtask.class_name)
        if cls is None:
            return Outcome(
                OutcomeKind.FAILURE,
                f"no subtask class {subtask.class_name!r} is registered on executor "
                f"{self.executor}",
            )
        run.started = asyncio.get_running_loop().time()
        instance = cls()
        ctx = self.context_for(run)
        rolling_back = subtask.operation == SubtaskOperation.ROLLBACK
        call = instance.rollback if rolling_back else instance.execute
        handler = asyncio.create_task(call(ctx), name=f"handler-{subtask.id}")
        run.handler = handler
        timed_out = False
        try:
            async with asyncio.timeout(subtask.timeout):
                waiters: set[asyncio.Future[Any]] = {handler, run.interrupt}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            timed_out = True
        if handler.done():
            return self._outcome_of(handler, run)
        reason = None if timed_out else run.interrupt.result()  # None: the timeout
        grace = self.cancel_grace_seconds
        if reason is Interrupt.CANCEL:
            run.cancel.set()
            await asyncio.wait({handler}, timeout=grace)  # cooperative stop first
        if not handler.done():
            handler.cancel()
            await asyncio.wait({handler}, timeout=grace)
        if not handler.done():
            log.warning("handler ignored cancellation", subtask_id=subtask.id)
        if handler.done() and not handler.cancelled():
            handler.exception()  # retrieved: how it ended no longer matters
        return Outcome(OutcomeKind.TIMEOUT if reason is None else reason.outcome)

    def _outcome_of(self, handler: asyncio.Task[None], run: Run) -> Outcome:
        if handler.cancelled():
            return Outcome(run.interrupted())
        error = handler.exception()
        if error is None:
            return Outcome(OutcomeKind.SUCCESS)
        if isinstance(error, SubtaskCancelled):
            return Outcome(run.interrupted())
        if isinstance(error, SubtaskError):
            return Outcome(OutcomeKind.FAILURE, error.message, error.code)
        log.error(
            "subtask handler raised",
            subtask_id=run.subtask.id,
            class_name=run.subtask.class_name,
            exc_info=error,
        )
        return Outcome(OutcomeKind.FAILURE, f"{type(error).__name__}: {error}")

    def context_for(self, run: Run) -> SubtaskContext[object]:
        """What the handler sees: the context with secrets decrypted; `log` writes to the
        run's log with secrets masked; `publish` keeps an output, stored with the run's end
        (whatever the outcome) while the run still holds its lease."""
        subtask = run.subtask
        context = run.context.decrypted(self.secret_box)
        secrets = context.secret_values()

        def write_line(line: str) -> None:
            if run.task is None or run.task.done():
                log.warning("log line after the subtask ended", subtask_id=subtask.id)
                return
            for secret in secrets:
                line = line.replace(secret, "******")
            moment = utcnow()
            self.logs.add(
                repo.LogLine(
                    subtask.task_id,
                    subtask.id,
                    subtask.run_time,
                    transitions.log_line(moment, line),
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
            if not run.going:
                raise SubtaskCancelled(f"subtask {subtask.id} is stopping: nothing more is kept")
            # Stored in the transaction that records the run's end (one write, not one per
            # output): later steps read it only after this one has ended anyway.
            run.outputs[key] = stored
            update = (
                Context(list_map={key: value}) if isinstance(value, list) else Context({key: value})
            )
            ctx.context = ctx.context.merged(update)

        ctx = SubtaskContext[object](
            task_id=subtask.task_id,
            subtask_id=subtask.id,
            name=subtask.name,
            run_time=subtask.run_time,
            operation=subtask.operation,
            executor=self.executor,
            context=context,
            parallel_key=subtask.parallel_key,
            database=self.database,
            resources=self.resources,
            _log=write_line,
            _publish=publish,
            _cancel=run.cancel,
        )
        return ctx
