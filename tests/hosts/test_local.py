"""What only the local executor does: its commands are obpilot's children, each in a
session of its own (a timeout or a cancel ends the whole group), run by obpilot's own
Python unless told otherwise."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from obpilot.errors import HostCommandTimeout
from obpilot.hosts.local import LocalExecutor
from tests.hosts.processes import gone


def test_the_probes_python_is_obpilots_own_unless_given() -> None:
    assert LocalExecutor().python == sys.executable  # the one that has pylibseekdb
    named = LocalExecutor(name="db1", python="/usr/bin/python3")
    assert (named.label, named.python) == ("db1", "/usr/bin/python3")


async def test_each_command_runs_in_a_session_of_its_own() -> None:
    result = await LocalExecutor().run(
        [sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid())"],
        step="session",
        time_limit=10,
    )
    assert result.stdout == "True\n"


async def test_the_environment_is_added_to_obpilots_own() -> None:
    result = await LocalExecutor().run(
        ["sh", "-c", 'echo "$PATH|$GREETING"'], step="env", time_limit=10, env={"GREETING": "hi"}
    )
    assert result.stdout.strip().split("|") == [os.environ["PATH"], "hi"]


async def test_a_timeout_kills_the_commands_children_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    with pytest.raises(HostCommandTimeout):
        await LocalExecutor().run(
            ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], step="wait", time_limit=1
        )
    assert await gone(int(pid_file.read_text()))


async def test_a_cancelled_command_leaves_nothing_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    command = asyncio.create_task(
        LocalExecutor().run(
            ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"], step="wait", time_limit=60
        )
    )
    async with asyncio.timeout(10):  # until the command runs
        while True:
            if pid_file.exists() and pid_file.read_text().strip():
                break
            await asyncio.sleep(0.05)
    command.cancel()
    with pytest.raises(asyncio.CancelledError):
        await command
    assert await gone(int(pid_file.read_text()))
