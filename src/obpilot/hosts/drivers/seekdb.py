"""seekdb: the OceanBase-engine server binary shipped in the `pylibseekdb` wheel.

Daemon mode, by choice: obpilot starts seekdb WITHOUT `--nodaemon`, so seekdb forks,
takes its own session (setsid), writes and locks BASE/run/seekdb.pid and lets the
launching parent return at once. The server therefore outlives the command (and the SSH
session) that started it, and the locked pid file is how obpilot finds it again, from
any obpilot instance. The launch itself is detached as well (new session, stdin from
/dev/null, output appended to BASE/log/obpilot-start.log).

Every start has `TELEMETRY_ENABLED=false` in its environment: seekdb otherwise reports
to an outside endpoint on bootstrap. Parameters are checked before starting, because
seekdb answers a bad value with exit 1 and an empty log, and `datafile_size=0` makes it
allocate most of the disk."""

from __future__ import annotations

import re

from obpilot.errors import InvalidServerParameter, ServerProcessError
from obpilot.hosts.drivers.base import PidFileServerDriver, _last_lines
from obpilot.hosts.drivers.process import Cause, ProcessStatus
from obpilot.hosts.executor import StepLog
from obpilot.hosts.protocol import LOCATE, LocateRequest

#: Small-machine defaults (about 190 MB of memory and 193 MB of disk per server);
#: a server's own parameters override them.
DEFAULT_PARAMETERS: dict[str, str] = {
    "memory_budget": "1G",
    "log_disk_size": "2G",
    "datafile_size": "64M",
    "datafile_maxsize": "2G",
}
LOG_LEVEL = "WARN"  # INFO logging grows the log by ~40 MB per restart
FIRST_START_VARIABLES = ("time_zone=+00:00",)  # only honoured when a base dir is new

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([KMGTP])B?", re.IGNORECASE)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,127}")
_VALUE = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")

#: Per host (executor label): the pylibseekdb binary found there, so that later starts
#: skip that look.
_LOCATED: dict[str, str] = {}

#: Sizes below which seekdb will not start (measured: 1G / 2G / 4M).
MINIMUM_SIZES = {"memory_budget": 1 << 30, "log_disk_size": 2 << 30, "datafile_size": 4 << 20}
SIZE_PARAMETERS = {*MINIMUM_SIZES, "datafile_maxsize", "datafile_next"}
REFUSED_NAMES = {
    "memory_limit": "is deprecated in seekdb (kept but ignored); use memory_budget",
    "system_memory": "does not exist in seekdb (it would be ignored silently); use memory_budget",
}


def parse_size(name: str, value: str) -> int:
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise InvalidServerParameter(
            f"Invalid seekdb parameter {name}={value!r}: give a size with a unit, such as 2G"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def effective_parameters(parameters: dict[str, str]) -> dict[str, str]:
    return {**DEFAULT_PARAMETERS, **parameters}


def check_parameters(parameters: dict[str, str]) -> list[str]:
    """Raises InvalidServerParameter for a value seekdb would refuse or misuse; returns
    warnings for names obpilot does not know (seekdb ignores unknown names silently)."""
    warnings = []
    sizes: dict[str, int] = {}
    for name, value in parameters.items():
        if not _NAME.fullmatch(name):
            raise InvalidServerParameter(f"Invalid seekdb parameter name {name!r}")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise InvalidServerParameter(
                f"Invalid seekdb parameter {name}={value!r}: 1 to 256 characters, no spaces"
            )
        if name in REFUSED_NAMES:
            raise InvalidServerParameter(f"seekdb parameter {name} {REFUSED_NAMES[name]}")
        if name == "datafile_size" and value.strip() in ("0", "0M", "0G"):
            raise InvalidServerParameter(
                "seekdb parameter datafile_size=0 sizes the data file by disk percentage "
                "(tens of GB allocated at once); give an explicit size such as 64M"
            )
        if name in SIZE_PARAMETERS:
            sizes[name] = parse_size(name, value)
            minimum = MINIMUM_SIZES.get(name)
            if minimum is not None and sizes[name] < minimum:
                raise InvalidServerParameter(
                    f"seekdb parameter {name}={value} is below its minimum of "
                    f"{minimum >> 20}M; seekdb would exit at once with an empty log"
                )
        elif name == "cpu_count":
            if not value.isdigit():
                raise InvalidServerParameter(f"seekdb parameter cpu_count={value!r}: a number")
        elif name not in ("syslog_level", "max_syslog_file_count", "net_thread_count"):
            warnings.append(
                f"seekdb parameter {name} is not one obpilot knows; seekdb ignores unknown "
                "names without a word, so check its spelling"
            )
    if "datafile_maxsize" in sizes and sizes["datafile_maxsize"] < sizes.get("datafile_size", 0):
        raise InvalidServerParameter(
            "seekdb parameter datafile_maxsize must not be smaller than datafile_size"
        )
    return warnings


class SeekdbDriver(PidFileServerDriver):
    kind = "seekdb"
    pid_file_name = "run/seekdb.pid"
    server_log_name = "log/seekdb.log"

    _binary: str | None = None

    @property
    def parameters(self) -> dict[str, str]:
        return effective_parameters(dict(self.spec.parameters))

    def validate(self) -> list[str]:
        return check_parameters(self.parameters)

    def known_binaries(self) -> list[str]:
        # run/seekdb is the symlink seekdb makes to the binary it was started from.
        binaries = [self.path("run/seekdb")]
        for binary in (self.spec.binary_path, self._binary):
            if binary and binary not in binaries:
                binaries.append(binary)
        return binaries

    async def resolve_binary(self, log: StepLog) -> str:
        binary = self.spec.binary_path or self._binary or _LOCATED.get(self.executor.label)
        if not binary:
            answer = await self.ask_agent(LOCATE, LocateRequest(), step="locate the seekdb binary")
            binary = answer["binary"]
            if not binary:
                raise ServerProcessError(
                    f"{self.label}: no seekdb binary: pylibseekdb is not installed for "
                    f"{answer['python']} on the host (pip install pylibseekdb), and the "
                    "server has no binaryPath",
                    cause=Cause.BINARY_NOT_FOUND,
                )
            log(f"{self.label}: seekdb binary from pylibseekdb of {answer['python']}: {binary}")
            _LOCATED[self.executor.label] = binary
        self._binary = binary
        return binary

    async def binary_problem(self, binary: str) -> ServerProcessError | None:
        result = await self.executor.run(
            [binary, "--version"], step=f"{self.label}: check {binary}", time_limit=60, check=False
        )
        if result.exit_status == 0:
            return None
        return ServerProcessError(
            f"{self.label}: {binary} cannot run (exit status {result.exit_status}): "
            f"{_last_lines(result.stderr + result.stdout, 3) or 'no output'} "
            "(the binary needs libaio.so.1 beside it, as the pylibseekdb package has it)",
            cause=Cause.BINARY_NOT_FOUND,
        )

    def launch_command(
        self, binary: str, status: ProcessStatus
    ) -> tuple[list[str], dict[str, str], str]:
        argv = [binary, "--port", str(self.spec.sql_port), "--base-dir", self.home]
        for name, value in sorted(self.parameters.items()):
            argv += ["--parameter", f"{name}={value}"]
        argv += ["--log-level", LOG_LEVEL]
        if not status.initialised:
            for variable in FIRST_START_VARIABLES:
                argv += ["--variable", variable]
        return argv, {"TELEMETRY_ENABLED": "false"}, self.home

    def launch_failure(self, returncode: int | None, output: str, server_log: str) -> Exception:
        if returncode == 96:
            return ServerProcessError(
                f"{self.label}: base dir {self.home} is in use by another seekdb "
                f"(exit 96: {_last_lines(output, 2)})",
                cause=Cause.BASE_DIR_IN_USE,
            )
        if not server_log.strip():
            return ServerProcessError(
                f"{self.label}: seekdb exited at once with an empty {self.server_log_name}"
                f"{self.exit_hint(server_log)}",
                cause=Cause.BAD_PARAMETER,
            )
        return super().launch_failure(returncode, output, server_log)

    def exit_cause(self, server_log: str) -> Cause:
        # seekdb answers a refused --parameter value with exit 1 and an empty log.
        return Cause.START_FAILED if server_log.strip() else Cause.BAD_PARAMETER

    def exit_hint(self, server_log: str) -> str:
        if server_log.strip():
            return (
                f" (seekdb runs with --log-level {LOG_LEVEL}, which drops the cause of a failed "
                "start; run it once by hand without that flag and look for EDIAG lines)"
            )
        values = ", ".join(f"{k}={v}" for k, v in sorted(self.parameters.items()))
        return f"; seekdb exits so when it refuses a --parameter value ({values})"

    def freeze_statement(self) -> str | None:
        return "ALTER SYSTEM MINOR FREEZE"
