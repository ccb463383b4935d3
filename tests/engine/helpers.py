"""Small helpers shared by the engine's metadb tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from obpilot.engine import Context, SubtaskInstance, TaskInstance
from tests.support.engine_tasks import subtask_named


def ctx(record_file: Path, **strings: object) -> Context:
    """A task context whose subtasks record their executions to `record_file`."""
    return Context.of({"record_file": record_file, **strings})


def running(name: str) -> Callable[[TaskInstance, list[SubtaskInstance]], bool]:
    """A `wait_for` condition: the subtask called `name` is RUNNING."""
    return lambda _task, subtasks: subtask_named(subtasks, name).status == "RUNNING"
