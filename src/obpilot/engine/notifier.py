"""In-process signals between whoever changes tasks and whoever waits for changes: the
local worker pools (new READY work, cancel requests) and task streams (something changed).

Signals are only hints: every listener re-reads the metadb, and other instances' changes
reach it through polling. `notify_after_commit` sends them once the caller's transaction
has committed, so a listener never looks before the data is there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Signal:
    wake_workers: bool = False
    tasks: frozenset[int] = frozenset()
    cancels: frozenset[int] = frozenset()


Listener = Callable[[Signal], None]


class Notifier:
    def __init__(self) -> None:
        self._listeners: dict[int, tuple[asyncio.AbstractEventLoop, Listener]] = {}
        self._next = 0

    def subscribe(self, listener: Listener) -> int:
        self._next += 1
        self._listeners[self._next] = (asyncio.get_running_loop(), listener)
        return self._next

    def unsubscribe(self, handle: int) -> None:
        self._listeners.pop(handle, None)

    def send(self, signal: Signal) -> None:
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, listener in list(self._listeners.values()):
            if loop is current:
                loop.call_soon(listener, signal)  # no self-pipe write to wake a running loop
            elif not loop.is_closed():
                loop.call_soon_threadsafe(listener, signal)


NOTIFIER = Notifier()

_INFO_KEY = "obpilot.engine.signals"


@dataclass
class _Pending:
    wake_workers: bool = False
    tasks: set[int] = field(default_factory=set)
    cancels: set[int] = field(default_factory=set)


def notify_after_commit(
    session: AsyncSession,
    *,
    wake_workers: bool = False,
    tasks: Iterable[int] = (),
    cancels: Iterable[int] = (),
) -> None:
    """Queues signals that go out when `session`'s transaction commits (dropped on rollback)."""
    pending: _Pending = session.sync_session.info.setdefault(_INFO_KEY, _Pending())
    pending.wake_workers |= wake_workers
    pending.tasks.update(tasks)
    pending.cancels.update(cancels)


# Listening on the Session class once is much cheaper than per session; sessions that
# queued nothing only pay a dictionary lookup.
@event.listens_for(Session, "after_commit")
def _send_pending(sync_session: Session) -> None:
    pending: _Pending | None = sync_session.info.pop(_INFO_KEY, None)
    if pending is not None:
        NOTIFIER.send(
            Signal(pending.wake_workers, frozenset(pending.tasks), frozenset(pending.cancels))
        )


@event.listens_for(Session, "after_rollback")
def _drop_pending(sync_session: Session) -> None:
    sync_session.info.pop(_INFO_KEY, None)
