"""How obpilot writes values the way OCP does, wherever they are written (answers, log
lines, error messages)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(value: datetime) -> str:
    """ISO-8601 with milliseconds and the UTC offset, as OCP renders times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")
