"""One interface for running commands on a host, whether it is this machine (a local
subprocess) or a remote one (SSH). Process drivers are written against it only, so the
same driver code runs locally and over SSH.

Commands are argument vectors, never shell strings: the SSH implementation quotes them,
so a value can never be read as shell syntax. Data goes in on stdin (`input`), and
secrets travel only there, never on a command line (visible in `ps`) or in a log.

Every failure is a `HostError` subclass (see `obpilot.errors`) that names the host, the
step and why: unreachable, authentication failed, host key changed, timed out, or
command failed with its exit status and stderr.

A command's output enters obpilot in its `CommandResult`, made printable there
(`formats.printable_lines`): whatever quotes it (an error, a log line) quotes text, never
a terminal escape or a line break of another line's making."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from obpilot.errors import (
    HostAuthenticationFailed,
    HostCommandFailed,
    HostCommandTimeout,
    HostError,
    HostFileCopyFailed,
    HostKeyChanged,
    HostUnreachable,
)
from obpilot.formats import printable, printable_lines
from obpilot.hosts.protocol import Action, AnswerT, RequestT

__all__ = [
    "CommandResult",
    "HostAgent",
    "HostAuthenticationFailed",
    "HostCommandFailed",
    "HostCommandTimeout",
    "HostError",
    "HostExecutor",
    "HostFileCopyFailed",
    "HostKeyChanged",
    "HostPipe",
    "HostUnreachable",
    "ProcessExit",
    "StepLog",
    "discard_log",
]

#: Writes one line into the running subtask's log (or anywhere the caller wants).
StepLog = Callable[[str], None]


def discard_log(_line: str) -> None:
    """A `StepLog` for callers that keep no log."""


@dataclass(frozen=True)
class CommandResult:
    host: str
    step: str
    exit_status: int | None  # None: ended by a signal
    stdout: str
    stderr: str

    def __post_init__(self) -> None:
        # Frozen: the printable texts are set the way dataclasses set fields.
        object.__setattr__(self, "stdout", printable_lines(self.stdout))
        object.__setattr__(self, "stderr", printable_lines(self.stderr))

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class ProcessExit:
    """A server process that the host's agent had identified has exited."""

    host: str  # the host's label
    pid: int
    start_ticks: int
    home: str


#: Called (on obpilot's event loop) with each exit an agent reports.
ExitListener = Callable[[ProcessExit], None]


class HostPipe(Protocol):
    """A command that keeps running on a host while obpilot talks to it over its stdin
    and stdout (the host's agent)."""

    async def send(self, data: bytes) -> None: ...

    async def receive_line(self) -> bytes:
        """The next line of its stdout; b"" once it has ended."""
        ...

    def error_output(self) -> str:
        """The end of what it wrote on stderr (to say why it ended)."""
        ...

    async def close(self) -> None:
        """Closes its stdin (the agent exits) and makes sure it has ended."""
        ...


class ErrorTail:
    """The end of what a pipe command writes on stderr, read as it comes (so that the
    command never blocks on a full pipe), to say why it ended."""

    KEPT = 2000

    def __init__(self, stream: SupportsRead) -> None:
        self._text = b""
        self._reader = asyncio.create_task(self._keep(stream))

    async def _keep(self, stream: SupportsRead) -> None:
        with contextlib.suppress(Exception):  # a dropped connection ends the reading too
            while chunk := await stream.read(4096):
                self._text = (self._text + chunk)[-self.KEPT :]

    def text(self) -> str:
        return printable(self._text.decode(errors="replace").strip())

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class SupportsRead(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class HostAgent(Protocol):
    """The resident agent of one host: actions (`obpilot.hosts.protocol`) answered by one
    long-lived process, and the exits of the server processes it has identified."""

    @property
    def label(self) -> str: ...

    async def call(
        self, action: Action[RequestT, AnswerT], request: RequestT, *, step: str, time_limit: float
    ) -> AnswerT:
        """Runs one action on the host and returns its answer; at most `time_limit`
        seconds (then `HostCommandTimeout`). A failure is a `HostError` naming `step`."""
        ...

    def on_exit(self, listener: ExitListener) -> None:
        """Calls `listener` with every exit the agent reports from now on."""
        ...


@runtime_checkable
class HostExecutor(Protocol):
    """Runs commands on one host."""

    @property
    def label(self) -> str:
        """How errors and logs name the host, e.g. `local` or `root@10.0.0.5:22`."""
        ...

    @property
    def python(self) -> str:
        """The Python 3 interpreter on the host that runs obpilot's host agent."""
        ...

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
        """Runs `argv` and waits for it, at most `time_limit` seconds (then it is killed and
        `HostCommandTimeout` raised). With `check`, a non-zero exit raises
        `HostCommandFailed`. `step` names the operation in errors."""
        ...

    async def open_pipe(self, argv: Sequence[str], *, step: str) -> HostPipe:
        """Starts `argv` to talk to it over its stdin and stdout until `HostPipe.close`."""
        ...

    async def put_file(
        self, source: Path, destination: str, *, mode: int, step: str, time_limit: float
    ) -> None:
        """Copies the local file `source` to `destination` on the host (making its
        directory), whole or not at all (written beside it, then renamed over it)."""
        ...

    @property
    def agent(self) -> HostAgent:
        """The host's agent, started on first use and again after it has ended."""
        ...

    async def close(self) -> None:
        """Ends what the executor holds: its connection, its agent."""
        ...


def check_result(result: CommandResult) -> CommandResult:
    if result.exit_status != 0:
        raise HostCommandFailed(
            host=result.host,
            step=result.step,
            exit_status=result.exit_status,
            stderr=printable(result.stderr),
        )
    return result
