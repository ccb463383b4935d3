"""Subtask classes (what a DAG node does) and the context a running subtask sees. Which
classes an engine knows is its `catalog.Catalog`'s business."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from obpilot.engine.context import Context
from obpilot.engine.states import SubtaskOperation

if TYPE_CHECKING:
    from obpilot.db.engine import Database


class SubtaskError(Exception):
    """Raise from a handler to fail the subtask with this message (no traceback logged)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SubtaskCancelled(Exception):
    """Raised by `ctx.check_cancelled()` once a cancel was requested or the lease was lost."""


#: What the process hands its subtasks (`ctx.resources`): the engine does not know its type.
Resources = TypeVar("Resources", covariant=True)


class Subtask:
    """Base of every subtask class. A concrete subclass sets `name` and `execute`:

        class StopObserverProcess(Subtask):
            name = "Stop observer process"
            timeout = 600
            resumable = True   # safe to run again after a crash mid-way

            async def execute(self, ctx: SubtaskContext[FlowResources]) -> None:
                server_id = ctx.item        # this branch's element of its fan-out list
                ctx.log(f"stopping server {server_id}")
                ...

            async def rollback(self, ctx: SubtaskContext[FlowResources]) -> None:
                ...                          # undo; the default does nothing

    A handler names the resources it needs in its context's type (`SubtaskContext[object]`
    for none). A catalog knows the class under `class_name` (default `module.QualName`);
    that string is stored as the subtask's `className`, so keep it stable once tasks exist.
    Pass `abstract=True` in the class statement for an intermediate base class."""

    name: ClassVar[str]
    description: ClassVar[str | None] = None  # default: the name, as in OCP's samples
    class_name: ClassVar[str]
    timeout: ClassVar[int] = 3600  # seconds; exceeded -> FAILED with TSK10012
    retryable: ClassVar[bool] = True
    skippable: ClassVar[bool] = True
    rollbackable: ClassVar[bool] = True  # False -> prohibitRollback on the subtask
    resumable: ClassVar[bool] = False  # True -> executor lost / shutdown makes it READY again

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        if not isinstance(getattr(cls, "name", None), str):
            raise TypeError(f"subtask class {cls.__qualname__} must set `name`")
        if "class_name" not in cls.__dict__:
            cls.class_name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.timeout <= 0:
            raise ValueError(f"{cls.__qualname__}.timeout must be positive")

    @classmethod
    def display_description(cls) -> str:
        return cls.description or cls.name

    # Any: the resources are whatever the engine was given; which handlers an engine runs
    # is decided at run time, by the class names its catalog knows.
    async def execute(self, ctx: SubtaskContext[Any]) -> None:
        raise NotImplementedError

    async def rollback(self, ctx: SubtaskContext[Any]) -> None:
        return None


class WaitNode(Subtask):
    """The join OCP puts between two consecutive parallel stages."""

    name = "Wait node"
    class_name = "obpilot.engine.WaitNode"
    timeout = 60
    resumable = True

    async def execute(self, ctx: SubtaskContext[object]) -> None:
        return None


PublishFn = Callable[[str, str | list[str]], Awaitable[None]]


@dataclass
class SubtaskContext(Generic[Resources]):
    """What a running handler sees and can do.

    * `get`, `get_list`, `strings`, `lists`: the task's context plus what earlier stages
      published (and what this subtask published in an earlier run), secrets decrypted;
    * `parallel_idx` and `item`: this branch of a fan-out;
    * `publish` / `publish_list`: outputs for later subtasks, stored in the transaction
      that records the run's end, whatever the outcome (a run whose lease was lost stores
      none; a resumed run sees those of earlier runs that ended);
    * `log(line)`: a line in this run's subtask log (written while the subtask runs);
    * `check_cancelled()` / `cancelled`: cooperative cancellation checkpoints;
    * `database`: the metadb, for handlers that record state (open short transactions;
      never hold one across host I/O);
    * `resources`: what the process hands its subtasks (the app: `flows.FlowResources`)."""

    task_id: int
    subtask_id: int
    name: str
    run_time: int
    operation: SubtaskOperation
    executor: str
    context: Context
    parallel_key: str | None
    database: Database
    resources: Resources
    _log: Callable[[str], None]
    _publish: PublishFn
    _cancel: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def parallel_idx(self) -> int:
        return self.context.parallel_idx

    @property
    def strings(self) -> Mapping[str, str]:
        return self.context.string_map

    @property
    def lists(self) -> Mapping[str, list[str]]:
        return {k: list(v) for k, v in self.context.list_map.items()}

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.context.string_map.get(key, default)

    def require(self, key: str) -> str:
        value = self.context.string_map.get(key)
        if value is None:
            raise SubtaskError(f"context has no stringMap entry {key!r}")
        return value

    def get_list(self, key: str) -> list[str]:
        return list(self.context.list_map.get(key, ()))

    @property
    def item(self) -> str:
        """This branch's element: `listMap[<the stage's list>][parallelIdx]`."""
        if self.parallel_key is None or self.parallel_idx < 0:
            raise SubtaskError(f"subtask {self.name!r} is not one branch of a parallel stage")
        values = self.get_list(self.parallel_key)
        if self.parallel_idx >= len(values):
            raise SubtaskError(
                f"listMap[{self.parallel_key!r}] has {len(values)} entries; "
                f"no entry {self.parallel_idx}"
            )
        return values[self.parallel_idx]

    def log(self, line: str) -> None:
        self._log(line)

    async def publish(self, key: str, value: object) -> None:
        await self._publish(key, str(value))

    async def publish_list(self, key: str, values: Iterable[object]) -> None:
        await self._publish(key, [str(v) for v in values])

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise SubtaskCancelled(f"subtask {self.subtask_id} was cancelled")

    async def sleep(self, seconds: float) -> None:
        """Sleeps, waking early (with SubtaskCancelled) if a cancel arrives."""
        try:
            await asyncio.wait_for(self._cancel.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise SubtaskCancelled(f"subtask {self.subtask_id} was cancelled")
