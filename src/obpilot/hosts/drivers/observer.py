"""OceanBase CE 4.x observer under a home path: HOME/bin/observer, HOME/lib,
HOME/run/observer.pid, HOME/etc/, HOME/log/observer.log.

Start: the command line is rebuilt from the stored configuration the way obshell
rebuilds it (`generateStartCmd`): run in HOME with LD_LIBRARY_PATH=HOME/lib,
`bin/observer -p MYSQL_PORT -P RPC_PORT -z ZONE -n CLUSTER -c CLUSTER_ID [-d data_dir]
[-I local_ip] [-i devname] [-r rootservice_list] [-l syslog_level] -o 'name=value,...'`.
The observer daemonises by itself (no `-N`): it keeps HOME as its working directory and
holds the lockf lock on run/observer.pid, which is how it is found again.

Stop: optionally `ALTER SYSTEM MINOR FREEZE` first (for the server itself when its
address and RPC port are known), which shortens the next start's log replay; a failed
freeze only logs a warning, as in obd. Then SIGUSR1, the observer's clean stop
(`ObSignalHandle::deal_signals`: prepare_stop, set_stop), and SIGKILL after the grace
period. SIGTERM is not used: the observer's handler turns it into raise(SIGKILL)."""

from __future__ import annotations

import re
from ipaddress import ip_address

from obpilot.errors import InvalidServerParameter, ServerProcessError
from obpilot.hosts.drivers.base import PidFileServerDriver, _last_lines
from obpilot.hosts.drivers.process import Cause, ProcessStatus
from obpilot.hosts.executor import StepLog

#: Stored parameters that become command-line flags (obshell's startOptionsMap);
#: every other parameter goes into `-o name=value,...`.
START_OPTIONS = {
    "data_dir": "-d",
    "devname": "-i",
    "local_ip": "-I",
    "syslog_level": "-l",
    "rootservice_list": "-r",
}
#: Set through the server's own fields (sqlPort, rpcPort, zone, cluster), not parameters.
FROM_SERVER_FIELDS = {"mysql_port", "rpc_port", "zone", "cluster", "cluster_id"}
#: Never on a command line (obshell's nonStartItems).
NOT_START_ITEMS = {"homePath", "redo_dir", "clog_dir", "slog_dir", "rootPwd", "root_password"}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_VALUE = re.compile(r"[^\s,'\x00-\x1f\x7f]{1,512}")


def check_parameters(parameters: dict[str, str]) -> None:
    for name, value in parameters.items():
        if not _NAME.fullmatch(name):
            raise InvalidServerParameter(f"Invalid observer parameter name {name!r}")
        if name in FROM_SERVER_FIELDS:
            raise InvalidServerParameter(
                f"observer parameter {name} comes from the server's own settings "
                "(sqlPort, rpcPort, zone, cluster); remove it from the parameters"
            )
        if name in NOT_START_ITEMS:
            raise InvalidServerParameter(f"observer parameter {name} is not a start option")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise InvalidServerParameter(
                f"Invalid observer parameter {name}={value!r}: 1 to 512 characters without "
                "spaces, commas or quotes (the -o option joins name=value pairs with commas)"
            )


class ObserverDriver(PidFileServerDriver):
    kind = "observer"
    pid_file_name = "run/observer.pid"
    server_log_name = "log/observer.log"

    @property
    def binary(self) -> str:
        return self.spec.binary_path or self.path("bin/observer")

    def validate(self) -> list[str]:
        missing = [
            label
            for label, value in (
                ("rpcPort", self.spec.rpc_port),
                ("zone", self.spec.zone_name),
                ("cluster name", self.spec.cluster_name),
                ("obClusterId", self.spec.ob_cluster_id),
            )
            if value in (None, "")
        ]
        if missing:
            raise InvalidServerParameter(
                f"An observer start command needs {', '.join(missing)} of the server"
            )
        if self.spec.server_ip is not None:
            try:
                ip_address(self.spec.server_ip)
            except ValueError:
                raise InvalidServerParameter(
                    f"Invalid observer address {self.spec.server_ip!r}"
                ) from None
        check_parameters(dict(self.spec.parameters))
        return []

    def known_binaries(self) -> list[str]:
        return [self.binary]

    async def resolve_binary(self, log: StepLog) -> str:
        return self.binary

    async def binary_problem(self, binary: str) -> ServerProcessError | None:
        result = await self.executor.run(
            [binary, "-V"],
            step=f"{self.label}: check {binary}",
            time_limit=60,
            env={"LD_LIBRARY_PATH": self.path("lib")},
            check=False,
        )
        if result.exit_status == 0:
            return None
        return ServerProcessError(
            f"{self.label}: {binary} cannot run (exit status {result.exit_status}): "
            f"{_last_lines(result.stderr + result.stdout, 3) or 'no output'}",
            cause=Cause.BINARY_NOT_FOUND,
        )

    def launch_command(
        self, binary: str, status: ProcessStatus
    ) -> tuple[list[str], dict[str, str], str]:
        spec = self.spec
        argv = [
            binary,
            "-p",
            str(spec.sql_port),
            "-P",
            str(spec.rpc_port),
            "-z",
            str(spec.zone_name),
            "-n",
            str(spec.cluster_name),
            "-c",
            str(spec.ob_cluster_id),
        ]
        parameters = dict(spec.parameters)
        if spec.server_ip and "local_ip" not in parameters and "devname" not in parameters:
            parameters["local_ip"] = spec.server_ip
        others = []
        for name, value in sorted(parameters.items()):
            if name in START_OPTIONS:
                argv += [START_OPTIONS[name], value]
            else:
                others.append(f"{name}={value}")
        if others:
            argv += ["-o", ",".join(others)]
        return argv, {"LD_LIBRARY_PATH": self.path("lib")}, self.home

    def freeze_statement(self) -> str | None:
        if self.spec.server_ip and self.spec.rpc_port:
            address = ip_address(self.spec.server_ip)
            host = f"[{address}]" if address.version == 6 else str(address)
            return f"ALTER SYSTEM MINOR FREEZE SERVER = ('{host}:{int(self.spec.rpc_port)}')"
        return "ALTER SYSTEM MINOR FREEZE"
