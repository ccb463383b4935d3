"""subtask_log: one row per line, per run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.engine.models import SubtaskLog
from obpilot.engine.repository.rows import core_table


@dataclass(frozen=True)
class LogLine:
    task_id: int
    subtask_id: int
    run_time: int
    content: str
    time: datetime


async def insert_log_lines(session: AsyncSession, lines: Sequence[LogLine]) -> None:
    if lines:
        await session.execute(
            core_table(SubtaskLog).insert(),
            [
                {
                    "task_id": line.task_id,
                    "subtask_id": line.subtask_id,
                    "run_time": line.run_time,
                    "content": line.content,
                    "create_time": line.time,
                }
                for line in lines
            ],
        )


async def subtask_log(session: AsyncSession, subtask_id: int) -> list[str]:
    rows = await session.scalars(
        select(SubtaskLog.content)
        .where(SubtaskLog.subtask_id == subtask_id)
        .order_by(SubtaskLog.run_time, SubtaskLog.id)
    )
    return list(rows)


async def max_log_id(session: AsyncSession, task_id: int) -> int:
    value = await session.scalar(
        select(func.max(SubtaskLog.id)).where(SubtaskLog.task_id == task_id)
    )
    return int(value or 0)


async def log_rows_after(
    session: AsyncSession, task_id: int, after_id: int, *, limit: int = 5000
) -> list[SubtaskLog]:
    rows = await session.scalars(
        select(SubtaskLog)
        .where(SubtaskLog.task_id == task_id, SubtaskLog.id > after_id)
        .order_by(SubtaskLog.id)
        .limit(limit)
    )
    return list(rows)
