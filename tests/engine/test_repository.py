"""The repository's transition function refuses a status change the table does not have."""

from __future__ import annotations

import pytest

from obpilot.db.engine import Database
from obpilot.engine import SubtaskInstance, SubtaskStatus
from obpilot.engine import repository as repo


async def test_the_transition_table_refuses_what_does_not_exist(database: Database) -> None:
    async with database.transaction(write=True) as session:
        for source, target in [
            ("PENDING", "FAILED"),
            ("SUCCESSFUL", "RUNNING"),
            ("READY", "PENDING"),
        ]:
            with pytest.raises(repo.IllegalTransition, match=f"{source} -> {target}"):
                await repo.transition_subtasks(
                    session,
                    SubtaskInstance.id == 1,
                    expect=SubtaskStatus(source),
                    to=SubtaskStatus(target),
                )
