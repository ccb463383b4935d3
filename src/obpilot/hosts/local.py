"""Commands on this machine, as asyncio subprocesses; the agent is one of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from obpilot.hosts.agent import minimal_environment
from obpilot.hosts.agent_link import AgentLink
from obpilot.hosts.executor import (
    CommandResult,
    ErrorTail,
    HostCommandTimeout,
    HostFileCopyFailed,
    HostUnreachable,
    check_result,
)

#: The longest line read from a pipe (an agent's answer with a log's tail fits easily).
PIPE_LINE_LIMIT = 16 * 1024 * 1024


def _copy_whole(source: Path, destination: str, mode: int) -> None:
    partial = f"{destination}.obpilot-part"
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copyfile(source, partial)
    os.chmod(partial, mode)
    os.replace(partial, destination)


class LocalExecutor:
    """Runs commands as children of obpilot, each in its own session so that a timeout
    can kill the whole process group and a signal to obpilot does not reach them."""

    def __init__(self, *, name: str = "local", python: str | None = None) -> None:
        self._name = name
        # obpilot's own interpreter: it exists, and it is the one that has pylibseekdb.
        self._python = python or sys.executable
        self._agent = AgentLink(self)

    @property
    def label(self) -> str:
        return self._name

    @property
    def python(self) -> str:
        return self._python

    @property
    def agent(self) -> AgentLink:
        return self._agent

    async def run(
        self,
        argv: Sequence[str],
        *,
        step: str,
        time_limit: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> CommandResult:
        if not argv:
            raise ValueError("empty command")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**minimal_environment(os.environ), **(env or {})},
                start_new_session=True,
            )
        except OSError as error:
            # Missing or not executable: reported like a shell would (127).
            result = CommandResult(self.label, step, 127, "", f"cannot run {argv[0]!r}: {error}")
            return check_result(result) if check else result
        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(input.encode() if input is not None else None), time_limit
            )
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            raise HostCommandTimeout(
                host=self.label,
                step=step,
                detail=f"{argv[0]} did not finish within {time_limit:g} s and was killed",
            ) from None
        except BaseException:  # cancelled: leave nothing running behind
            _kill_group(process.pid)
            with contextlib.suppress(Exception):
                await asyncio.shield(process.wait())
            raise
        returncode = process.returncode
        result = CommandResult(
            host=self.label,
            step=step,
            exit_status=returncode if returncode is not None and returncode >= 0 else None,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
        )
        return check_result(result) if check else result

    async def put_file(
        self, source: Path, destination: str, *, mode: int, step: str, time_limit: float
    ) -> None:
        try:
            await asyncio.wait_for(
                asyncio.to_thread(_copy_whole, source, destination, mode), time_limit
            )
        except TimeoutError:
            raise HostCommandTimeout(
                host=self.label, step=step, detail=f"copying {source} took over {time_limit:g} s"
            ) from None
        except OSError as error:
            raise HostFileCopyFailed(host=self.label, step=step, detail=str(error)) from None

    async def open_pipe(self, argv: Sequence[str], *, step: str) -> LocalPipe:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=minimal_environment(os.environ),
                start_new_session=True,
                limit=PIPE_LINE_LIMIT,
            )
        except OSError as error:
            raise HostUnreachable(
                host=self.label, step=step, detail=f"cannot run {argv[0]!r}: {error}"
            ) from None
        return LocalPipe(process)

    async def close(self) -> None:
        await self._agent.close()


class LocalPipe:
    """A child process talked to over its stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        assert process.stderr is not None
        self._stderr = ErrorTail(process.stderr)

    async def send(self, data: bytes) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(data)
        await self._process.stdin.drain()

    async def receive_line(self) -> bytes:
        assert self._process.stdout is not None
        return await self._process.stdout.readline()

    def error_output(self) -> str:
        return self._stderr.text()

    async def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 2.0)
        except TimeoutError:
            _kill_group(self._process.pid)
            await self._process.wait()
        await self._stderr.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
