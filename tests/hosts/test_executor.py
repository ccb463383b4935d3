"""The `HostExecutor` contract: running commands on a host, and every way that can fail,
kept by both executors (locally and over SSH). What only one of them does is tested in
test_local.py and test_ssh.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from obpilot.errors import HostCommandFailed, HostCommandTimeout, HostError
from obpilot.hosts.executor import CommandResult, HostExecutor, check_result
from tests.hosts.processes import gone


def test_a_result_is_ok_only_with_exit_status_zero() -> None:
    assert check_result(CommandResult("db1", "look", 0, "out", "")).ok
    for status in (1, None):  # None: ended by a signal
        failed = CommandResult("db1", "look", status, "", "boom")
        assert not failed.ok
        with pytest.raises(HostCommandFailed, match="boom") as caught:
            check_result(failed)
        assert (caught.value.host, caught.value.step) == ("db1", "look")


class TestBothExecutors:
    async def test_output_exit_status_stdin_and_environment(self, executor: HostExecutor) -> None:
        result = await executor.run(
            ["sh", "-c", 'read line; echo "got $line $GREETING"; echo warn >&2; exit 3'],
            step="echo",
            time_limit=10,
            input="it\n",
            env={"GREETING": "hello world"},
            check=False,
        )
        assert (result.exit_status, result.stdout, result.stderr) == (
            3,
            "got it hello world\n",
            "warn\n",
        )
        assert result.host == executor.label

    async def test_a_failed_command_names_host_step_status_and_stderr(
        self, executor: HostExecutor
    ) -> None:
        with pytest.raises(HostCommandFailed) as caught:
            await executor.run(
                ["sh", "-c", "echo 'no such file' >&2; exit 2"], step="read config", time_limit=10
            )
        message = caught.value.message
        assert executor.label in message
        assert "read config" in message
        assert "exit status 2" in message
        assert "no such file" in message
        assert caught.value.exit_status == 2

    async def test_a_missing_program_fails_like_a_shell_would(self, executor: HostExecutor) -> None:
        result = await executor.run(
            ["/nonexistent/obpilot-test"], step="run", time_limit=10, check=False
        )
        assert result.exit_status == 127

    async def test_a_command_that_outlives_its_time_limit_is_killed(
        self, executor: HostExecutor, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "sleeper.pid"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(HostCommandTimeout) as caught:
            await executor.run(
                ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
                step="wait forever",
                time_limit=1,
            )
        assert loop.time() - started < 10
        assert "wait forever" in caught.value.message
        assert "timed out" in caught.value.message
        assert await gone(int(pid_file.read_text()))

    async def test_commands_run_concurrently_on_one_host(self, executor: HostExecutor) -> None:
        results = await asyncio.gather(
            *(
                executor.run(["sh", "-c", f"sleep 0.2; echo {n}"], step="n", time_limit=30)
                for n in range(12)
            )
        )
        assert [r.stdout.strip() for r in results] == [str(n) for n in range(12)]


async def test_put_file_copies_whole_into_a_new_directory(
    executor: HostExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 8192)  # 2 MiB: more than one chunk
    destination = tmp_path / "new" / "bin" / "server"
    await executor.put_file(source, str(destination), mode=0o750, step="copy", time_limit=60)
    assert destination.read_bytes() == source.read_bytes()
    assert destination.stat().st_mode & 0o777 == 0o750
    assert not destination.with_name("server.obpilot-part").exists()
    source.write_bytes(b"again")  # over an existing file: replaced
    await executor.put_file(source, str(destination), mode=0o644, step="copy", time_limit=60)
    assert destination.read_bytes() == b"again"


async def test_put_file_into_a_place_it_cannot_write_is_a_host_error(
    executor: HostExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")
    with pytest.raises(HostError, match="copying a file failed"):
        await executor.put_file(
            source, str(blocker / "below"), mode=0o644, step="copy", time_limit=60
        )
