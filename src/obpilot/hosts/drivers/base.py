"""What every process driver offers (status, start, stop: idempotent, bounded, verified,
logged), and the shared machinery for servers that keep a locked pid file, as OceanBase
observers and seekdb both do.

Drivers act only through a `HostExecutor`: each look or action is a request to the host's
resident agent (`obpilot.hosts.agent`, started through the executor), so the same code
serves local and SSH hosts and a host needs only Python 3.7+. What the agent is asked and
answers is typed in `obpilot.hosts.protocol`.

A server process is identified, before any signal and again inside the agent just before
the kill, by three facts at once: it holds the fcntl lock on the server's pid file, it
runs the server's binary, and its working directory is the server's home (base dir). A
pid file whose pid now belongs to another program is reported as stale and that program
is never signalled.

Stopping is clean first: SIGUSR1, which both seekdb and the OceanBase observer handle as
"prepare stop, then stop" (exit 0 after a few seconds). SIGTERM is never the clean path:
their handler answers it with raise(SIGKILL). Only when the grace period has passed (or
with `force`) does the driver send SIGKILL. The agent sees the exit the moment it happens
(a pidfd), and the stop is verified in the same answer: the pid gone, the pid file's lock
free and nothing listening on the server's ports any more."""

from __future__ import annotations

import asyncio
import posixpath
import shlex
import time
from dataclasses import replace

from obpilot.errors import ServerProcessError
from obpilot.hosts.drivers.process import (
    Cause,
    PortOwner,
    ProcessIdentity,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    ProcessTimeouts,
)
from obpilot.hosts.executor import HostExecutor, StepLog, discard_log
from obpilot.hosts.protocol import (
    INSPECT,
    LAUNCH,
    SIGNAL,
    TAIL,
    WAIT_READY,
    Action,
    AnswerT,
    InspectedProcess,
    InspectReport,
    InspectRequest,
    LaunchRequest,
    RequestT,
    SignalAnswer,
    SignalName,
    SignalRequest,
    SqlAnswer,
    SqlRequest,
    TailRequest,
    WaitReadyAnswer,
    WaitReadyRequest,
)


def _exiting_holder(report: InspectReport) -> bool:
    """The pid file's lock is held by a pid with no live main thread (a zombie)."""
    holder = report["lock_holder"]
    return bool(holder) and holder not in {process["pid"] for process in report["processes"]}


#: Added to an action's own wait to bound the call (agent start, SSH round trips).
AGENT_MARGIN = 15.0


class PidFileServerDriver:
    """Status, start and stop for a daemonising server with a locked pid file under its
    home. Subclasses say where things are and how the start command looks."""

    kind = "server"
    pid_file_name = "run/server.pid"
    server_log_name = "log/server.log"
    console_log_name = "log/obpilot-start.log"

    def __init__(
        self,
        spec: ProcessSpec,
        executor: HostExecutor,
        timeouts: ProcessTimeouts | None = None,
    ) -> None:
        self.spec = spec
        self.executor = executor
        self.timeouts = timeouts or ProcessTimeouts()
        self.home = posixpath.normpath(spec.home_path)
        if not posixpath.isabs(self.home):
            raise ValueError(f"the home path must be absolute: {spec.home_path!r}")

    # -- what subclasses provide ------------------------------------------------------

    def validate(self) -> list[str]:
        """Raises InvalidServerParameter for settings the process would refuse or misuse;
        returns warnings worth logging."""
        return []

    def known_binaries(self) -> list[str]:
        """Files whose process counts as this server (before any lookup)."""
        raise NotImplementedError

    async def resolve_binary(self, log: StepLog) -> str:
        """The binary to start (found, not run: its check costs more than the launch)."""
        raise NotImplementedError

    async def binary_problem(self, binary: str) -> ServerProcessError | None:
        """Why `binary` cannot run on the host, if it cannot: asked once a launch failed."""
        raise NotImplementedError

    def launch_command(
        self, binary: str, status: ProcessStatus
    ) -> tuple[list[str], dict[str, str], str]:
        """argv, extra environment, working directory."""
        raise NotImplementedError

    def launch_failure(self, returncode: int | None, output: str, server_log: str) -> Exception:
        """The error for a launch whose process failed or never took the pid-file lock."""
        if returncode in (0, None):
            what = f"{self.kind} never took the lock on {self.pid_file} (its daemon exited?)"
        else:
            what = f"{self.kind} exited with status {returncode} while starting"
        return ServerProcessError(
            f"{self.label}: {what}; its output: {_last_lines(output) or '(none)'}; "
            f"{self.server_log_name}: {_last_lines(server_log) or '(empty)'}"
            + self.exit_hint(server_log),
            cause=self.exit_cause(server_log),
        )

    def freeze_statement(self) -> str | None:
        return None

    # -- helpers ----------------------------------------------------------------------

    @property
    def label(self) -> str:
        return f"{self.kind} {self.executor.label} port {self.spec.sql_port} ({self.home})"

    def path(self, relative: str) -> str:
        return posixpath.join(self.home, relative)

    @property
    def pid_file(self) -> str:
        return self.path(self.pid_file_name)

    def sql_request(self, queries: list[str], timeout: float | None = None) -> SqlRequest:
        return {
            "host": "127.0.0.1",
            "port": self.spec.sql_port,
            "user": self.spec.sql_user,
            "password": self.spec.sql_password or "",
            "queries": queries,
            "timeout": timeout or self.timeouts.sql,
        }

    async def ask_agent(
        self, action: Action[RequestT, AnswerT], request: RequestT, *, step: str, wait: float = 0.0
    ) -> AnswerT:
        """Runs one action on the host's agent and returns its answer."""
        return await self.executor.agent.call(
            action,
            request,
            step=f"{self.label}: {step}",
            time_limit=wait + self.timeouts.probe + AGENT_MARGIN,
        )

    async def run_sql(
        self, statements: list[str], *, password: str | None, step: str, time_limit: float = 60.0
    ) -> SqlAnswer:
        """Logs in as root with `password` (not the stored one: a new server has none yet)
        and runs `statements` in order; the answer says whether all of them ran."""
        request = self.inspect_request(statements)
        request["sql"] = {**self.sql_request(statements, time_limit), "password": password or ""}
        report = await self.ask_agent(INSPECT, request, step=step, wait=time_limit)
        answer = report.get("sql")
        if answer is None:
            return {"ok": False, "error": "the agent ran no SQL"}
        return answer

    # -- status -----------------------------------------------------------------------

    def inspect_request(
        self, queries: list[str] | None = None, *, login: bool = True
    ) -> InspectRequest:
        """What the agent needs to find and check this server (`inspect` and the actions
        that end with an inspection); with `login`, a SQL login too."""
        request: InspectRequest = {
            "pid_file": self.pid_file,
            "home": self.home,
            "binaries": self.known_binaries(),
            "port": self.spec.sql_port,
            "other_ports": [self.spec.rpc_port] if self.spec.rpc_port else [],
        }
        if login:
            request["sql"] = self.sql_request(queries or ["SELECT 1", "SELECT version()"])
        return request

    async def status(self, *, log: StepLog = discard_log) -> ProcessStatus:
        deadline = time.monotonic() + self.timeouts.kill
        while True:
            report = await self.ask_agent(INSPECT, self.inspect_request(), step="status")
            # A server whose main thread has exited while its last threads still hold the
            # pid file's lock is on its way out: wait (bounded) instead of calling it a
            # stranger, or a stop right after a clean stop would refuse to go on.
            if not _exiting_holder(report) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        status = self._status_from(report)
        log(f"{self.label}: {status.describe()}")
        return status

    def _status_from(self, report: InspectReport) -> ProcessStatus:
        """The server's status from an inspection: its process found (running), the pid
        file's lock held by another (conflict), or neither (stopped)."""
        # Facts that hold whatever runs; each branch sets the state and adds its own.
        surroundings = ProcessStatus(
            state=ProcessState.STOPPED,
            home=self.home,
            sql_port=self.spec.sql_port,
            port_in_use=report["port"]["listening"],
            port_owners=tuple(
                PortOwner(owner["pid"], owner["exe"]) for owner in report["port"]["owners"]
            ),
            other_ports_in_use=tuple(
                int(number)
                for number, listeners in report["other_ports"].items()
                if listeners["listening"]
            ),
            initialised=report["store_initialised"],
        )
        ours = [process for process in report["processes"] if not process["problems"]]
        if ours:
            return self._identified_status(ours[0], report, surroundings)
        if report["lock_holder"] is not None:
            return self._conflict_status(report["lock_holder"], report, surroundings)
        return self._stopped_status(report, surroundings)

    def _identified_status(
        self, process: InspectedProcess, report: InspectReport, surroundings: ProcessStatus
    ) -> ProcessStatus:
        """This server's process runs: RUNNING when it answers SQL, STARTING while it does
        not, CONFLICT when it serves other ports (the home is another server's)."""
        sql: SqlAnswer = report.get("sql") or {"ok": False, "error": "the SQL port is not open"}
        found = replace(
            surroundings,
            pid=process["pid"],
            start_ticks=process["start_ticks"],
            binary=process["exe"],
            listen_ports=tuple(process["listen_ports"]),
        )
        extra_ports = set(process["listen_ports"]) - {self.spec.sql_port, self.spec.rpc_port}
        if not sql["ok"] and self.spec.sql_port not in process["listen_ports"] and extra_ports:
            return replace(
                found,
                state=ProcessState.CONFLICT,
                notes=(
                    f"{self.home} is in use by pid {process['pid']}, which serves port "
                    f"{', '.join(map(str, sorted(extra_ports)))}, not {self.spec.sql_port}",
                ),
            )
        notes: tuple[str, ...] = ()
        if found.port_in_use and process["pid"] not in {owner.pid for owner in found.port_owners}:
            notes = (_port_note(self.spec.sql_port, found.port_owners),)
        if not sql["ok"]:
            return replace(found, state=ProcessState.STARTING, sql_error=sql["error"], notes=notes)
        results = sql["results"]
        version = results[1][0][0] if len(results) > 1 and results[1] else None
        return replace(found, state=ProcessState.RUNNING, version=version, notes=notes)

    def _conflict_status(
        self, holder: int, report: InspectReport, surroundings: ProcessStatus
    ) -> ProcessStatus:
        """The pid file's lock is held by a process that is not this server."""
        strangers = {process["pid"]: process for process in report["processes"]}
        problems = strangers[holder]["problems"] if holder in strangers else []
        return replace(
            surroundings,
            state=ProcessState.CONFLICT,
            pid=holder or None,
            notes=(
                f"{self.pid_file} is locked by pid {holder}, which is not this server"
                + (f" ({'; '.join(problems)})" if problems else ""),
            ),
        )

    def _stopped_status(self, report: InspectReport, surroundings: ProcessStatus) -> ProcessStatus:
        """No process of this server; noted: a pid file left behind, and a port that
        another program holds."""
        notes: list[str] = []
        file_pid = report["pid_file"].get("pid")
        if file_pid is not None:
            strangers = {process["pid"]: process for process in report["processes"]}
            if file_pid in strangers:
                stranger = strangers[file_pid]
                notes.append(
                    f"stale pid file: pid {file_pid} now belongs to another program "
                    f"({stranger['exe'] or (stranger['argv'] or ['?'])[0]}); it is left alone"
                )
            else:
                notes.append(f"left-over pid file of pid {file_pid}, which has exited")
        if surroundings.port_in_use:
            notes.append(_port_note(self.spec.sql_port, surroundings.port_owners))
        return replace(surroundings, notes=tuple(notes))

    # -- start ------------------------------------------------------------------------

    async def start(
        self, *, log: StepLog = discard_log, time_limit: float | None = None
    ) -> ProcessStatus:
        warnings = self.validate()
        log(f"{self.label}: start")
        for warning in warnings:
            log(f"{self.label}: warning: {warning}")
        return await self._start_validated(log, time_limit or self.timeouts.start)

    async def _start_validated(self, log: StepLog, time_limit: float) -> ProcessStatus:
        deadline = time.monotonic() + time_limit
        status = await self.status(log=log)
        if status.state == ProcessState.RUNNING:
            log(f"{self.label}: already running (pid {status.pid}); nothing to do")
            return status
        if status.state == ProcessState.CONFLICT:
            raise ServerProcessError(
                f"{self.label}: cannot start: {'; '.join(status.notes)}",
                cause=Cause.BASE_DIR_IN_USE,
            )
        if status.state == ProcessState.STOPPED:
            if status.port_in_use:
                busy = _port_note(self.spec.sql_port, status.port_owners)
                raise ServerProcessError(
                    f"{self.label}: cannot start: {busy}", cause=Cause.PORT_BUSY
                )
            if status.other_ports_in_use:
                busy_ports = ", ".join(map(str, status.other_ports_in_use))
                raise ServerProcessError(
                    f"{self.label}: cannot start: port {busy_ports} is in use",
                    cause=Cause.PORT_BUSY,
                )
            return await self._launch(status, deadline, log)
        log(f"{self.label}: pid {status.pid} is already starting; waiting for it")
        return await self._wait_ready(status, deadline, log)

    async def _launch(self, status: ProcessStatus, deadline: float, log: StepLog) -> ProcessStatus:
        """Launches the server and, in the same call to the agent, waits until it answers
        SQL."""
        binary = await self.resolve_binary(log)
        argv, env, cwd = self.launch_command(binary, status)
        environment = " ".join(f"{key}={value}" for key, value in env.items())
        log(f"{self.label}: launching in {cwd}: {environment} {shlex.join(argv)}".strip())
        request = LaunchRequest(
            **self.inspect_request(),
            argv=argv,
            env=env,
            cwd=cwd,
            console=self.path(self.console_log_name),
            parent_wait=30.0,
            lock_wait=10.0,
            ready_timeout=self._ready_wait(deadline),
        )
        wait = 40.0 + request["ready_timeout"]
        answer = await self.ask_agent(
            LAUNCH, request, step="launch and wait until SQL answers", wait=wait
        )
        returncode, pid = answer["returncode"], answer["pid"]
        if returncode not in (0, None) or not pid:
            raise await self._launch_failed(binary, returncode, answer["output"])
        launched = self._status_from(answer["report"])
        if launched.pid != pid or launched.state == ProcessState.CONFLICT:
            raise ServerProcessError(
                f"{self.label}: the process that took the pid file lock (pid {pid}) is not "
                f"the server that was launched: {launched.describe()}",
                cause=Cause.START_FAILED,
            )
        log(f"{self.label}: started as pid {pid}")
        ready = answer.get("ready")
        if ready is None:  # the agent answers with its wait whenever it found the pid
            raise ServerProcessError(
                f"{self.label}: the agent did not wait for SQL", cause=Cause.START_FAILED
            )
        return await self._ready_status(launched, ready, log)

    async def _launch_failed(
        self, binary: str, returncode: int | None, output: str
    ) -> ServerProcessError | Exception:
        """Why a launch failed: a binary that cannot run, or what the server said."""
        problem = await self.binary_problem(binary)
        if problem is not None:
            return problem
        server_log = await self._tail(self.server_log_name)
        return self.launch_failure(returncode, output, server_log)

    def _ready_wait(self, deadline: float) -> float:
        return max(1.0, deadline - time.monotonic())

    async def _wait_ready(
        self, status: ProcessStatus, deadline: float, log: StepLog
    ) -> ProcessStatus:
        if status.state == ProcessState.RUNNING:
            log(f"{self.label}: answers SQL")
            return status
        assert status.pid is not None  # identified: launched, or found STARTING
        remaining = self._ready_wait(deadline)
        log(f"{self.label}: waiting up to {remaining:.0f} s for SQL on port {self.spec.sql_port}")
        request = WaitReadyRequest(
            **self.inspect_request(),
            pid=status.pid,
            start_ticks=status.start_ticks,
            timeout=remaining,
        )
        answer = await self.ask_agent(
            WAIT_READY, request, step="wait until SQL answers", wait=remaining
        )
        return await self._ready_status(status, answer, log)

    async def _ready_status(
        self, status: ProcessStatus, answer: WaitReadyAnswer, log: StepLog
    ) -> ProcessStatus:
        """The started server's status from the agent's wait for SQL: RUNNING, or the
        error that says why not."""
        if answer["state"] == "exited":
            raise await self._exited_while_starting(status)
        if answer["state"] == "denied":
            raise ServerProcessError(
                f"{self.label}: pid {status.pid} answers on port {self.spec.sql_port} but "
                f"refuses the login of {self.spec.sql_user!r}: {answer['sql']['error']}",
                cause=Cause.NOT_READY,
            )
        if answer["state"] == "timeout":
            raise ServerProcessError(
                f"{self.label}: pid {status.pid} does not answer SQL on port "
                f"{self.spec.sql_port} after {answer['waited']:.0f} s "
                f"({answer['sql']['error']}); it is left running",
                cause=Cause.NOT_READY,
            )
        log(f"{self.label}: answers SQL after {answer['waited']:.1f} s")
        final = self._status_from(answer["report"])
        log(f"{self.label}: {final.describe()}")
        if final.state != ProcessState.RUNNING:
            raise ServerProcessError(
                f"{self.label}: answered SQL once, then: {final.describe()}",
                cause=Cause.NOT_READY,
            )
        return final

    async def _exited_while_starting(self, status: ProcessStatus) -> Exception:
        after = await self.status(log=discard_log)
        server_log = await self._tail(self.server_log_name)
        if after.port_in_use and status.pid not in {owner.pid for owner in after.port_owners}:
            return ServerProcessError(
                f"{self.label}: pid {status.pid} exited while starting: "
                f"{_port_note(self.spec.sql_port, after.port_owners)}",
                cause=Cause.PORT_BUSY,
            )
        return ServerProcessError(
            f"{self.label}: pid {status.pid} exited before answering SQL; "
            f"{self.server_log_name}: {_last_lines(server_log) or '(empty)'}"
            + self.exit_hint(server_log),
            cause=self.exit_cause(server_log),
        )

    def exit_cause(self, server_log: str) -> Cause:
        """Why a server that was launched exited while starting, judged from its log."""
        return Cause.START_FAILED

    def exit_hint(self, server_log: str) -> str:
        return ""

    async def _tail(self, relative: str) -> str:
        answer = await self.ask_agent(
            TAIL, TailRequest(path=self.path(relative)), step=f"read {relative}"
        )
        return answer["text"]

    # -- stop -------------------------------------------------------------------------

    async def stop(
        self,
        *,
        log: StepLog = discard_log,
        force: bool = False,
        freeze: bool = False,
        grace: float | None = None,
        identified: ProcessIdentity | None = None,
    ) -> ProcessStatus:
        """Stops the server. `identified`: its process as an earlier look of this
        operation found it, signalled without looking again (the agent re-checks it just
        before the signal); if it is no longer that process, the driver looks again."""
        grace = self.timeouts.stop_grace if grace is None else grace
        log(f"{self.label}: stop{' (force)' if force else ''}")
        if identified is not None and not freeze:
            log(f"{self.label}: pid {identified.pid}, as identified earlier in this operation")
            try:
                return await self._stop_process(identified, force, grace, log)
            except ServerProcessError as error:
                if error.cause != Cause.NOT_OURS:
                    raise
                log(f"{self.label}: pid {identified.pid} is not that process any more")
        status = await self.status(log=log)
        if status.state == ProcessState.STOPPED:
            log(f"{self.label}: already stopped; nothing to do")
            return status
        identity = status.identity
        if status.state == ProcessState.CONFLICT or identity is None:
            raise ServerProcessError(
                f"{self.label}: refusing to signal: {'; '.join(status.notes)}",
                cause=Cause.NOT_OURS,
            )
        if freeze and not force and status.state == ProcessState.RUNNING:
            await self._freeze(log)
        return await self._stop_process(identity, force, grace, log)

    async def _stop_process(
        self, identity: ProcessIdentity, force: bool, grace: float, log: StepLog
    ) -> ProcessStatus:
        """The clean stop (unless `force`), SIGKILL after `grace`, verified."""
        pid, ticks = identity.pid, identity.start_ticks
        answer: SignalAnswer = {"sent": False, "gone": False}
        if not force:
            answer = await self._signal(pid, ticks, "USR1", grace, log)
            if answer["gone"]:
                log(f"{self.label}: pid {pid} exited {answer['waited']:.1f} s after SIGUSR1")
            else:
                log(f"{self.label}: pid {pid} still runs after {grace:g} s; sending SIGKILL")
        if not answer["gone"]:
            answer = await self._signal(pid, ticks, "KILL", self.timeouts.kill, log)
            if not answer["gone"]:
                limit = self.timeouts.kill
                raise ServerProcessError(
                    f"{self.label}: pid {pid} still runs {limit:g} s after SIGKILL",
                    cause=Cause.STILL_RUNNING,
                )
            log(f"{self.label}: pid {pid} exited after SIGKILL")
        return self._verify_stopped(pid, answer, log)

    async def _signal(
        self, pid: int, start_ticks: int, name: SignalName, wait: float, log: StepLog
    ) -> SignalAnswer:
        """Sends SIG`name` once the agent has identified the process again, waits up to
        `wait` seconds for it to exit and, if it did, until its lock and ports are free."""
        if name == "USR1":
            log(f"{self.label}: sending SIGUSR1 (clean stop) to pid {pid}; {wait:g} s grace")
        else:
            log(f"{self.label}: sending SIGKILL to pid {pid}")
        request = SignalRequest(
            pid=pid,
            start_ticks=start_ticks,
            signal=name,
            binaries=self.known_binaries(),
            home=self.home,
            pid_file=self.pid_file,
            wait_seconds=wait,
            # No SQL login: the verification looks at the lock, the pid and the ports.
            settle=self.inspect_request(login=False),
            settle_seconds=self.timeouts.kill,
        )
        answer = await self.ask_agent(
            SIGNAL, request, step=f"send SIG{name}", wait=wait + self.timeouts.kill
        )
        problems = answer.get("problems")
        if problems:
            raise ServerProcessError(
                f"{self.label}: refusing to send SIG{name} to pid {pid}: " + "; ".join(problems),
                cause=Cause.NOT_OURS,
            )
        if not answer["sent"]:
            log(f"{self.label}: pid {pid} had already exited")
        return answer

    def _verify_stopped(self, pid: int, answer: SignalAnswer, log: StepLog) -> ProcessStatus:
        """The stop's verification, from the agent's last look after the exit."""
        report = answer.get("report")
        if report is None:
            raise ServerProcessError(
                f"{self.label}: pid {pid} exited but the agent did not look again",
                cause=Cause.STILL_RUNNING,
            )
        final = self._status_from(report)
        if final.state != ProcessState.STOPPED:
            raise ServerProcessError(
                f"{self.label}: still not stopped: {final.describe()}",
                cause=Cause.STILL_RUNNING,
            )
        if final.port_in_use:
            raise ServerProcessError(
                f"{self.label}: pid {pid} is gone but "
                f"{_port_note(self.spec.sql_port, final.port_owners)}",
                cause=Cause.PORT_STILL_OPEN,
            )
        if final.other_ports_in_use:
            raise ServerProcessError(
                f"{self.label}: pid {pid} is gone but port "
                f"{', '.join(map(str, final.other_ports_in_use))} is still in use",
                cause=Cause.PORT_STILL_OPEN,
            )
        ports = ", ".join(
            map(str, [self.spec.sql_port, *([self.spec.rpc_port] if self.spec.rpc_port else [])])
        )
        log(f"{self.label}: stopped; pid {pid} gone and port {ports} closed")
        return final

    async def _freeze(self, log: StepLog) -> None:
        statement = self.freeze_statement()
        if statement is None:
            return
        log(f"{self.label}: {statement}")
        request = self.inspect_request()
        request["sql"] = self.sql_request([statement], timeout=60.0)
        answer = await self.ask_agent(INSPECT, request, step="minor freeze", wait=60.0)
        sql: SqlAnswer = answer.get("sql") or {"ok": False, "error": "the SQL port is not open"}
        if not sql["ok"]:
            # As obd does: a failed freeze only costs a longer restart, so it does not
            # block the stop.
            log(f"{self.label}: minor freeze failed ({sql['error']}); stopping anyway")


def _port_note(port: int, owners: tuple[PortOwner, ...]) -> str:
    if not owners:
        return f"port {port} is in use by another process (not visible to obpilot's user)"
    holders = ", ".join(f"pid {owner.pid} ({owner.exe or '?'})" for owner in owners)
    return f"port {port} is in use by {holders}"


def _last_lines(text: str, count: int = 8) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[-1500:]
