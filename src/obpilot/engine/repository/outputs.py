"""What subtasks publish for later ones (`ctx.publish`), and what a subtask sees."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskInstance, SubtaskOutput, TaskInstance
from obpilot.engine.states import SubtaskStatus

S = SubtaskStatus
Sub = SubtaskInstance


@dataclass(frozen=True)
class Output:
    subtask_id: int
    stage: int
    parallel_idx: int
    key: str
    value: str | list[str]


def _output(row: SubtaskOutput) -> Output:
    value: str | list[str] = json.loads(row.output_value) if row.is_list else row.output_value
    return Output(row.subtask_id, row.stage, row.parallel_idx, row.output_key, value)


async def visible_outputs(
    session: AsyncSession, *, task_id: int, stage: int, subtask_id: int
) -> list[Output]:
    """What a subtask sees: outputs of SUCCESSFUL subtasks of earlier stages, then its own
    (from an earlier run), in stage and branch order (later writers win)."""
    rows = await session.scalars(
        select(SubtaskOutput)
        .join(Sub, Sub.id == SubtaskOutput.subtask_id)
        .where(
            SubtaskOutput.task_id == task_id,
            or_(
                and_(SubtaskOutput.stage < stage, Sub.status == S.SUCCESSFUL.value),
                SubtaskOutput.subtask_id == subtask_id,
            ),
        )
        .order_by(SubtaskOutput.stage, SubtaskOutput.parallel_idx, SubtaskOutput.id)
    )
    return [_output(row) for row in rows]


async def task_outputs(session: AsyncSession, task_id: int) -> list[Output]:
    rows = await session.scalars(
        select(SubtaskOutput).where(SubtaskOutput.task_id == task_id).order_by(SubtaskOutput.id)
    )
    return [_output(row) for row in rows]


async def put_output(
    session: AsyncSession,
    *,
    task_id: int,
    subtask_id: int,
    stage: int,
    parallel_idx: int,
    key: str,
    value: str | list[str],
) -> None:
    await session.execute(
        delete(SubtaskOutput).where(
            SubtaskOutput.subtask_id == subtask_id, SubtaskOutput.output_key == key
        )
    )
    is_list = isinstance(value, list)
    await session.execute(
        insert(SubtaskOutput).values(
            task_id=task_id,
            subtask_id=subtask_id,
            stage=stage,
            parallel_idx=parallel_idx,
            output_key=key,
            is_list=is_list,
            output_value=json.dumps(value) if is_list else value,
        )
    )
    await session.execute(
        update(TaskInstance)
        .where(TaskInstance.id == task_id, TaskInstance.has_outputs.is_(False))
        .values(has_outputs=True)
        .execution_options(synchronize_session=False)
    )
