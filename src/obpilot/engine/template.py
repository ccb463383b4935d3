"""Templates: a chain of stages, each one subtask or a parallel fan-out over a context list.

    STOP_CLUSTER = Template(
        key="ob.cluster.stop",
        name="Stop OB cluster",
        stages=[
            single(PrepareStopCluster),
            parallel(PrepareStopZone, over="zone_names"),
            parallel(StopObserverProcess, over="server_ids"),
            single(UpdateClusterStatus),
        ],
    )

`plan(context)` turns it into DAG nodes: a parallel stage gives one subtask per element of
`listMap[over]` (`parallelIdx` 0..n-1), a "Wait node" joins two consecutive parallel
stages, and single <-> parallel stages connect directly. A parallel stage over an empty
list is left out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from obpilot.engine.context import Context
from obpilot.engine.states import TaskType
from obpilot.engine.subtask import Subtask, WaitNode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from obpilot.engine.models import TaskInstance

TaskEndHook = Callable[["AsyncSession", "TaskInstance"], Awaitable[None]]


@dataclass(frozen=True)
class Stage:
    subtask: type[Subtask]
    over: str | None = None  # listMap key to fan out over; None: one subtask


def single(subtask: type[Subtask]) -> Stage:
    return Stage(subtask)


def parallel(subtask: type[Subtask], *, over: str) -> Stage:
    return Stage(subtask, over)


@dataclass(frozen=True)
class PlannedSubtask:
    series_id: int
    stage: int
    subtask: type[Subtask]
    parallel_idx: int
    parallel_key: str | None
    upstreams: tuple[int, ...]  # series ids


@dataclass(frozen=True, eq=False)
class Template:
    """`on_end(session, task)` runs in the transaction that makes the task SUCCESSFUL or
    FAILED (inside a savepoint: if it raises, its changes are undone, the error is logged,
    and the task still ends). `task.status` and `task.operation` tell which end it was
    (SUCCESSFUL + ROLLBACK means rolled back). Use it, for example, to release a lock."""

    key: str
    name: str
    stages: Sequence[Stage]
    type: TaskType = TaskType.MANUAL
    on_end: TaskEndHook | None = None

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError(f"template {self.key!r} has no stages")

    def plan(self, context: Context) -> list[PlannedSubtask]:
        planned: list[PlannedSubtask] = []
        previous: list[int] = []
        previous_parallel = False
        stage_no = 0

        def add(subtask: type[Subtask], idx: int, key: str | None) -> int:
            series_id = len(planned)
            planned.append(PlannedSubtask(series_id, stage_no, subtask, idx, key, tuple(previous)))
            return series_id

        for stage in self.stages:
            if stage.over is None:
                current = [add(stage.subtask, -1, None)]
            else:
                if stage.over not in context.list_map:
                    raise ValueError(
                        f"template {self.key!r}: stage {stage.subtask.name!r} fans out over "
                        f"listMap[{stage.over!r}], which the context does not have"
                    )
                count = len(context.list_map[stage.over])
                if count == 0:
                    continue
                if previous_parallel:
                    previous = [add(WaitNode, -1, None)]
                    stage_no += 1
                current = [add(stage.subtask, idx, stage.over) for idx in range(count)]
            previous, previous_parallel = current, stage.over is not None
            stage_no += 1
        return planned


@dataclass(frozen=True, eq=False)
class TemplateFamily:
    """Templates of one shape built per count, keyed `<prefix><count>`: a rolling restart
    has one per number of zones, so its members cannot all be listed beforehand. Every
    member runs the subtask classes of the first, `build(1)`."""

    prefix: str
    build: Callable[[int], Template]

    def member(self, key: str) -> Template | None:
        """The member keyed `key`, or None if `key` names none of this family."""
        count = key.removeprefix(self.prefix)
        canonical = count.isascii() and count.isdigit() and not count.startswith("0")
        if count == key or not canonical:
            return None
        built = self.build(int(count))
        if built.key != key:
            raise ValueError(f"template family {self.prefix!r} built {built.key!r} for {key!r}")
        return built
