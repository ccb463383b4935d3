"""One interface for running commands on a host, whether it is this machine (a local
subprocess) or a remote one (SSH). Process drivers are written against it only, so the
same driver code runs locally and over SSH.

Commands are argument vectors, never shell strings: the SSH implementation quotes them,
so a value can never be read as shell syntax. Data goes in on stdin (`input`), and
secrets travel only there, never on a command line (visible in `ps`) or in a log.

Every failure is a `HostError` subclass (see `obpilot.errors`) that names the host, the
step and why: unreachable, authentication failed, host key changed, timed out, or
command failed with its exit status and stderr."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from obpilot.errors import (
    HostAuthenticationFailed,
    HostCommandFailed,
    HostCommandTimeout,
    HostError,
    HostKeyChanged,
    HostUnreachable,
)

__all__ = [
    "CommandResult",
    "HostAuthenticationFailed",
    "HostCommandFailed",
    "HostCommandTimeout",
    "HostError",
    "HostExecutor",
    "HostKeyChanged",
    "HostUnreachable",
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

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@runtime_checkable
class HostExecutor(Protocol):
    """Runs commands on one host."""

    @property
    def label(self) -> str:
        """How errors and logs name the host, e.g. `local` or `root@10.0.0.5:22`."""
        ...

    @property
    def python(self) -> str:
        """The Python 3 interpreter on the host that runs obpilot's probe scripts."""
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

    async def close(self) -> None: ...


def check_result(result: CommandResult) -> CommandResult:
    if result.exit_status != 0:
        raise HostCommandFailed(
            host=result.host,
            step=result.step,
            exit_status=result.exit_status,
            stderr=result.stderr,
        )
    return result
