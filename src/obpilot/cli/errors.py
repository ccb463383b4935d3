"""The CLI's exit codes and the one error type its commands raise to end with one."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented in the README and in `obpilot --help`; scripts rely on them."""

    OK = 0
    TASK_FAILED = 1  # also: the server could not be reached or failed unexpectedly
    USAGE = 2  # a bad option or argument, an unknown profile, a request the API refused as bad
    CONFLICT = 3  # 409: another task holds the cluster (OBE11020) or its state forbids it
    AUTH = 4  # 401/403: not logged in, bad credentials, no permission
    INTERRUPTED = 130  # Ctrl-C while watching: the task goes on
    TIMEOUT = 124  # --timeout passed before the task ended (as timeout(1) answers)


EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 the task failed (or the server failed); 2 usage (a bad "
    "option, argument or request); 3 conflict (another task holds the cluster, OBE11020, or "
    "its state forbids the operation); 4 authentication or permission; 124 --timeout "
    "passed; 130 Ctrl-C stopped watching (the task goes on)."
)


class CliError(Exception):
    """A failure explained in words for the user, ending the command with `exit_code`."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
