"""Commands on this machine, as asyncio subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from obpilot.hosts.executor import CommandResult, HostCommandTimeout, check_result


class LocalExecutor:
    """Runs commands as children of obpilot, each in its own session so that a timeout
    can kill the whole process group and a signal to obpilot does not reach them."""

    def __init__(self, *, name: str = "local", python: str | None = None) -> None:
        self._name = name
        # obpilot's own interpreter: it exists, and it is the one that has pylibseekdb.
        self._python = python or sys.executable

    @property
    def label(self) -> str:
        return self._name

    @property
    def python(self) -> str:
        return self._python

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
                env={**os.environ, **env} if env else None,
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

    async def close(self) -> None:
        """Nothing is held between commands."""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
