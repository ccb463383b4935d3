from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    """Where the test subtasks record their executions (JSON lines)."""
    return tmp_path / "executions.jsonl"
