"""A host with no real process on it: a `HostExecutor` whose agent answers the agent's
actions, and binaries' version checks, from a scripted table of processes, files and
ports. The drivers run their real code against it, agent requests and answers included
(through JSON, as on a host), and it reports the exits of the processes its looks
identified, as the agent does; only the host is imagined, in the spirit of
procrastinate's in-memory connector.

    host = FakeHost()
    host.install("/opt/seekdb", "seekdb 1.3.0")
    server = host.run_server("/data/s1", "/opt/seekdb", pid_file="/data/s1/run/seekdb.pid",
                             ports=[2881])
    await SeekdbDriver(spec, host).stop()
    assert host.signals == [(server.pid, "USR1")]

What the table can hold: servers that answer SQL (or not yet, or not to obpilot's
password), that exit on the clean stop or trap it, survive SIGKILL, or linger a few
looks after exiting with their pid file's lock and ports still held; strangers that hold
a port or a pid file's lock, visible or in another pid namespace; pid files, logs,
symbolic links and initialised stores. `launch_next` scripts what a launched command
does, and `before` runs a change of the table just before the agent's next action of a
kind (a pid reused, a process that vanishes), as a race on a real host would."""

from __future__ import annotations

import asyncio
import itertools
import json
import posixpath
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from obpilot.errors import HostError
from obpilot.hosts.access import HostAccess, HostTarget
from obpilot.hosts.agent import released, reports_in
from obpilot.hosts.executor import (
    CommandResult,
    ExitListener,
    HostExecutor,
    HostPipe,
    ProcessExit,
    check_result,
)
from obpilot.hosts.protocol import (
    Action,
    ActionName,
    AnswerT,
    InspectedProcess,
    InspectReport,
    InspectRequest,
    LaunchAnswer,
    LaunchRequest,
    LocateAnswer,
    LocateRequest,
    PidFile,
    PortListener,
    PortListeners,
    ProcessInfo,
    RequestT,
    SignalAnswer,
    SignalName,
    SignalRequest,
    SqlAnswer,
    SqlFailure,
    SqlRequest,
    SurveyAnswer,
    SurveyedPath,
    SurveyedPort,
    SurveyRequest,
    TailAnswer,
    TailRequest,
    WaitReadyAnswer,
    WaitReadyRequest,
)

SERVER_VERSION = "5.7.25-OceanBase_CE-seekdb-v1.0.0"
#: How long a clean stop takes on the fake host (what the agent reports as waited).
CLEAN_STOP_SECONDS = 0.5
ACCESS_DENIED = "MysqlError: ERROR 1045 (28000): Access denied for user 'root'@'127.0.0.1'"
NOT_SPEAKING_SQL = "MysqlError: connection closed by the server"


class CleanStop(Enum):
    """What a server does on SIGUSR1."""

    EXITS = "prepares to stop and exits within the grace period"
    TRAPPED = "traps the signal and goes on running"


class Startup(Enum):
    """What a launched server does while the driver waits for SQL."""

    READY = "opens its ports and answers SQL"
    SLOW = "answers nothing within the wait"
    CRASHES = "exits before answering SQL"


@dataclass
class FakeProcess:
    """A process in the fake host's table, and how it behaves."""

    pid: int
    exe: str
    cwd: str
    argv: list[str]
    start_ticks: int
    #: Ports it listens on now.
    ports: set[int] = field(default_factory=set)
    #: The pid file whose fcntl lock it holds.
    lock: str | None = None
    answers_sql: bool = False
    password: str = ""
    version: str = SERVER_VERSION
    #: Error of every statement other than the agent's SELECTs (a failing minor freeze).
    statement_error: str | None = None
    #: Statements it ran (minor freezes).
    statements: list[str] = field(default_factory=list)
    clean_stop: CleanStop = CleanStop.EXITS
    survives_kill: bool = False
    #: Looks (inspections) during which, after its main thread exited, its last threads
    #: still hold the lock and its ports.
    lingers: int = 0
    #: In another pid namespace (a container): the lock shows holder 0, a socket no owner.
    elsewhere: bool = False
    #: While starting: what it does when waited for, and the ports it will open.
    startup: Startup = Startup.READY
    planned_ports: set[int] = field(default_factory=set)
    exited: bool = False


@dataclass(frozen=True)
class Launch:
    """What the next launched command does. By default it daemonises: the daemon takes
    the pid file's lock (and writes its pid there) and starts up as `startup` says."""

    #: The launching parent's exit status; any other than 0 means no daemon.
    exit_status: int = 0
    output: str = ""
    #: Whether a daemon takes the pid file's lock (none: it died, or never got that far).
    takes_lock: bool = True
    #: The daemon's working directory; None: the one it was launched in.
    cwd: str | None = None
    #: It answers SQL as soon as it holds the lock (no wait needed).
    answers_at_once: bool = False
    startup: Startup = Startup.READY
    #: Its SQL password; None: the one obpilot logs in with.
    password: str | None = None
    clean_stop: CleanStop = CleanStop.EXITS


GIB = 1024**3


@dataclass
class FakeSystem:
    """What `survey` tells of the host; a test changes a field to make a check fail."""

    python: str = "3.11.2"
    proc: bool = True
    timeout: str | None = "/usr/bin/timeout"
    operating_system: str = "Linux 6.1.0-18-amd64 (Debian GNU/Linux 12 (bookworm))"
    architecture: str = "x86_64"
    cpu_count: int = 8
    memory_total: int = 16 * GIB
    memory_available: int = 12 * GIB
    #: Of every path (one file system).
    free_bytes: int = 100 * GIB


@dataclass(frozen=True)
class Binary:
    """An installed binary, as its version check sees it."""

    output: str
    exit_status: int = 0
    #: The LD_LIBRARY_PATH it needs to load (an observer's HOME/lib).
    library_path: str | None = None


class FakeHost:
    """A `HostExecutor` for one imagined host. Records what obpilot did there:
    `probes` (action names), `commands` (other argv), `launches` and `signals`."""

    _labels = itertools.count(1)

    def __init__(self, *, python: str = "python3", pylibseekdb: str | None = None) -> None:
        # Unique: drivers keep per-host caches keyed by the label.
        self._label = f"fake-host-{next(self._labels)}"
        self._python = python
        #: The seekdb binary inside the pylibseekdb package of the host's Python.
        self.pylibseekdb = pylibseekdb
        #: When set, every command fails with it (an unreachable host).
        self.outage: HostError | None = None
        self.processes: dict[int, FakeProcess] = {}
        #: Processes identified by a look: their exits are reported to `exit_listeners`.
        self.watched: dict[int, str] = {}
        self.exit_listeners: list[ExitListener] = []
        self.files: dict[str, str] = {}
        #: Symbolic links: path -> target (seekdb links HOME/run/seekdb to its binary).
        self.links: dict[str, str] = {}
        self.initialised_homes: set[str] = set()
        self.system = FakeSystem()
        self.binaries: dict[str, Binary] = {}
        self.probes: list[ActionName] = []
        self.commands: list[list[str]] = []
        #: What was copied onto the host: path -> (content, mode).
        self.copied: dict[str, tuple[bytes, int]] = {}
        self.launches: list[LaunchRequest] = []
        self.signals: list[tuple[int, SignalName]] = []
        self._pids = itertools.count(4001)
        self._ticks = itertools.count(100_000, 17)
        self._launch_plans: list[Launch] = []
        self._before: dict[ActionName, list[Callable[[], object]]] = {}

    # -- HostExecutor -----------------------------------------------------------------

    @property
    def label(self) -> str:
        return self._label

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
        if self.outage is not None:
            raise self.outage
        self.commands.append(list(argv))
        exit_status, stdout, stderr = self._run_binary(argv, env or {})
        result = CommandResult(self._label, step, exit_status, stdout, stderr)
        return check_result(result) if check else result

    async def open_pipe(self, argv: Sequence[str], *, step: str) -> HostPipe:
        raise AssertionError("the fake host's agent is the host itself")

    async def put_file(
        self, source: Path, destination: str, *, mode: int, step: str, time_limit: float
    ) -> None:
        if self.outage is not None:
            raise self.outage
        self.copied[destination] = (await asyncio.to_thread(source.read_bytes), mode)

    # -- HostAgent ----------------------------------------------------------------------

    @property
    def agent(self) -> FakeHost:
        return self

    async def call(
        self, action: Action[RequestT, AnswerT], request: RequestT, *, step: str, time_limit: float
    ) -> AnswerT:
        if self.outage is not None:
            raise self.outage
        parsed = json.loads(json.dumps(request))  # as it travels
        self.probes.append(action.name)
        try:
            for change in self._before.pop(action.name, []):
                change()
            answer = self._actions[action.name](self, parsed)
        except Exception as error:  # as the agent does: reported, then raised here
            raise HostError(
                host=self._label, step=step, detail=f"{type(error).__name__}: {error}"
            ) from None
        for report in reports_in(answer):
            for process in report["processes"]:
                if not process["problems"]:
                    self.watched[process["pid"]] = parsed["home"]
        return json.loads(json.dumps(answer))  # type: ignore[no-any-return]

    def on_exit(self, listener: ExitListener) -> None:
        self.exit_listeners.append(listener)

    async def close(self) -> None:
        """Nothing is held between commands."""

    # -- scripting the host -------------------------------------------------------------

    @property
    def contacted(self) -> bool:
        return bool(self.probes or self.commands)

    def install(
        self, path: str, output: str, *, exit_status: int = 0, library_path: str | None = None
    ) -> None:
        """A binary whose version check (any arguments) prints `output` (on stderr when it
        fails); `library_path` is the LD_LIBRARY_PATH it cannot load without."""
        self.binaries[path] = Binary(output, exit_status, library_path)

    def write(self, path: str, text: str) -> None:
        self.files[path] = text

    def link(self, path: str, target: str) -> None:
        self.links[path] = target

    def spawn(
        self,
        exe: str,
        *,
        cwd: str = "/",
        argv: Iterable[str] | None = None,
        ports: Iterable[int] = (),
        lock: str | None = None,
        pid: int | None = None,
        **behaviour: Any,
    ) -> FakeProcess:
        """A process in the table; `behaviour` sets `FakeProcess` fields."""
        process = FakeProcess(
            pid=pid or next(self._pids),
            exe=exe,
            cwd=cwd,
            argv=list(argv) if argv is not None else [exe],
            start_ticks=next(self._ticks),
            ports=set(ports),
            lock=lock,
            **behaviour,
        )
        self.processes[process.pid] = process
        return process

    def run_server(
        self,
        home: str,
        binary: str,
        *,
        pid_file: str,
        ports: Iterable[int],
        answers_sql: bool = True,
        **behaviour: Any,
    ) -> FakeProcess:
        """A server that works in `home`, holds the lock on `pid_file` with its pid in it,
        listens on `ports` and has initialised its store."""
        server = self.spawn(
            binary, cwd=home, ports=ports, lock=pid_file, answers_sql=answers_sql, **behaviour
        )
        self.files[pid_file] = str(server.pid)
        self.initialised_homes.add(home)
        return server

    def exit(self, process: FakeProcess) -> None:
        """The process exits (it lingers first if it was told to); an identified one is
        reported to the exit listeners."""
        process.exited = True
        if process.lingers <= 0:
            self.processes.pop(process.pid, None)
        home = self.watched.pop(process.pid, None)
        if home is not None:
            exited = ProcessExit(self._label, process.pid, process.start_ticks, home)
            for listener in self.exit_listeners:
                listener(exited)

    def reuse_pid(self, process: FakeProcess, exe: str) -> FakeProcess:
        """The process exits and another program gets its pid."""
        process.lingers = 0
        self.exit(process)
        return self.spawn(exe, pid=process.pid)

    def launch_next(self, plan: Launch) -> None:
        """What the next launch does (in order; by default `Launch()`)."""
        self._launch_plans.append(plan)

    def before(self, action: ActionName, change: Callable[[], object]) -> None:
        """Runs `change` just before the agent answers its next `action`; a change that
        raises makes the agent report an error, as the real one does."""
        self._before.setdefault(action, []).append(change)

    # -- binaries -----------------------------------------------------------------------

    def _run_binary(self, argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
        binary = self.binaries.get(argv[0])
        if binary is None:
            return 127, "", f"cannot run {argv[0]!r}: No such file or directory"
        if binary.library_path is not None and env.get("LD_LIBRARY_PATH") != binary.library_path:
            return 127, "", f"{argv[0]}: error while loading shared libraries"
        if binary.exit_status != 0:
            return binary.exit_status, "", binary.output
        return 0, binary.output, ""

    # -- the agent's actions ------------------------------------------------------------

    def _inspect(self, request: InspectRequest) -> InspectReport:
        self._age_lingering()
        pid_file, home = request["pid_file"], request["home"]
        named = self._read_pid_file(pid_file)
        holder = self._lock_holder(pid_file)
        candidates = []
        for pid in (holder, named.get("pid")):
            if pid and pid not in candidates:
                candidates.append(pid)
        processes: list[InspectedProcess] = []
        for pid in candidates:
            process = self._alive(pid)
            if process is not None:
                problems = self._problems(process, request["binaries"], home, pid_file)
                processes.append(
                    {
                        **self._process_info(process),
                        "problems": problems,
                        "listen_ports": sorted(process.ports) if not problems else [],
                    }
                )
        report: InspectReport = {
            "home_exists": self._home_exists(home),
            "pid_file": named,
            "lock_holder": holder,
            "store_initialised": home in self.initialised_homes,
            "processes": processes,
            "port": self._listeners(request["port"]),
            "other_ports": {str(port): self._listeners(port) for port in request["other_ports"]},
        }
        identified = any(not process["problems"] for process in processes)
        sql = request.get("sql")
        if sql is not None and identified and report["port"]["listening"]:
            report["sql"] = self._sql(sql)
        return report

    def _launch(self, request: LaunchRequest) -> LaunchAnswer:
        self.launches.append(request)
        plan = self._launch_plans.pop(0) if self._launch_plans else Launch()
        console = request["console"]
        self.files[console] = self.files.get(console, "") + plan.output
        runs, _, why = self._run_binary(request["argv"], request["env"])
        if runs != 0:  # a missing binary, or one that cannot load its libraries
            return {"returncode": runs, "launched_pid": 0, "pid": None, "output": why}
        answer: LaunchAnswer = {
            "returncode": plan.exit_status,
            "launched_pid": next(self._pids),
            "pid": None,
            "output": plan.output,
        }
        if plan.exit_status != 0 or not plan.takes_lock:
            return answer
        login = request.get("sql") or {"port": request["port"], "queries": []}
        password = login.get("password", "") if plan.password is None else plan.password
        daemon = self.spawn(
            request["argv"][0],
            cwd=plan.cwd or request["cwd"],
            argv=request["argv"],
            lock=request["pid_file"],
            password=password,
            startup=plan.startup,
            clean_stop=plan.clean_stop,
            planned_ports={request["port"], *request["other_ports"]},
        )
        self.files[request["pid_file"]] = str(daemon.pid)
        self.initialised_homes.add(request["cwd"])
        if plan.answers_at_once:
            self._open(daemon)
        answer["pid"] = daemon.pid
        answer["report"] = self._inspect(request)
        ready_timeout = request.get("ready_timeout")
        if ready_timeout is not None:
            answer["ready"] = self._wait_ready(
                {
                    **self._inspect_part(request),
                    "pid": daemon.pid,
                    "start_ticks": daemon.start_ticks,
                    "timeout": ready_timeout,
                }
            )
        return answer

    @staticmethod
    def _inspect_part(request: InspectRequest) -> InspectRequest:
        keys = InspectRequest.__required_keys__ | InspectRequest.__optional_keys__
        return {key: value for key, value in request.items() if key in keys}  # type: ignore[return-value]

    def _wait_ready(self, request: WaitReadyRequest) -> WaitReadyAnswer:
        not_open: SqlFailure = {"ok": False, "error": "the SQL port is not open yet"}
        process = self._alive(request["pid"])
        if process is None or process.start_ticks != request["start_ticks"]:
            return {"state": "exited", "waited": 0.0, "sql": not_open}
        if process.startup is Startup.CRASHES:
            self.exit(process)
            return {"state": "exited", "waited": 1.0, "sql": not_open}
        if process.startup is Startup.SLOW:
            return {"state": "timeout", "waited": request["timeout"], "sql": not_open}
        self._open(process)
        login = request.get("sql") or {"port": request["port"], "queries": []}
        checked = self._sql({**login, "queries": ["SELECT 1"]})
        if checked["ok"]:
            return {"state": "ready", "waited": 2.0, "report": self._inspect(request)}
        if checked["error"] == ACCESS_DENIED:
            return {"state": "denied", "waited": 2.0, "sql": checked}
        return {"state": "timeout", "waited": request["timeout"], "sql": checked}

    def _signal(self, request: SignalRequest) -> SignalAnswer:
        answer = self._send_signal(request)
        settle = request.get("settle")
        if answer["gone"] and settle is not None:
            answer["report"] = self._settled(settle)
        return answer

    def _send_signal(self, request: SignalRequest) -> SignalAnswer:
        pid = request["pid"]
        process = self._alive(pid)
        if process is None:
            return {"sent": False, "gone": True, "waited": 0.0}
        problems = self._problems(
            process, request["binaries"], request["home"], request["pid_file"]
        )
        if request["start_ticks"] is not None and process.start_ticks != request["start_ticks"]:
            problems.insert(0, f"pid {pid} was reused by a newer process")
        if problems:
            return {"sent": False, "gone": False, "problems": problems}
        self.signals.append((pid, request["signal"]))
        exits = (
            process.clean_stop is CleanStop.EXITS
            if request["signal"] == "USR1"
            else not process.survives_kill
        )
        if not exits:
            return {"sent": True, "gone": False, "waited": request["wait_seconds"]}
        self.exit(process)
        waited = CLEAN_STOP_SECONDS if request["signal"] == "USR1" else 0.0
        return {"sent": True, "gone": True, "waited": waited}

    #: Looks the agent takes, at most, while a server's last threads release what it held.
    SETTLE_LOOKS = 50

    def _settled(self, request: InspectRequest) -> InspectReport:
        for _ in range(self.SETTLE_LOOKS):
            report = self._inspect(request)
            if released(report):
                break
        return report

    def _locate(self, _request: LocateRequest) -> LocateAnswer:
        return {"binary": self.pylibseekdb, "python": f"/usr/bin/{self._python}"}

    def _tail(self, request: TailRequest) -> TailAnswer:
        text = self.files.get(request["path"])
        if text is None:
            return {"exists": False, "size": 0, "text": ""}
        return {"exists": True, "size": len(text), "text": text[-request.get("bytes", 8000) :]}

    def _survey(self, request: SurveyRequest) -> SurveyAnswer:
        system = self.system
        return {
            "python": system.python,
            "proc": system.proc,
            "timeout": system.timeout,
            "operating_system": system.operating_system,
            "architecture": system.architecture,
            "cpu_count": system.cpu_count,
            "memory_total": system.memory_total,
            "memory_available": system.memory_available,
            "paths": {path: self._survey_path(path) for path in request["paths"]},
            "ports": {str(port): self._survey_port(port) for port in request["ports"]},
        }

    def _survey_path(self, path: str) -> SurveyedPath:
        inside = path.rstrip("/") + "/"
        entries = sorted(
            {name[len(inside) :].split("/")[0] for name in self.files if name.startswith(inside)}
        )
        is_dir = self._home_exists(path)
        return {
            "exists": is_dir or path in self.files,
            "is_dir": is_dir,
            "entries": entries[:5],
            "writable": True,
            "free_bytes": self.system.free_bytes,
            "device": 2049,
        }

    def _survey_port(self, port: int) -> SurveyedPort:
        listeners = self._listeners(port)
        if not listeners["owners"]:
            return {"listening": listeners["listening"], "pid": None, "command": None}
        owner = listeners["owners"][0]
        return {
            "listening": True,
            "pid": owner["pid"],
            "command": " ".join(owner["argv"] or []) or owner["exe"],
        }

    _actions: dict[ActionName, Callable[[FakeHost, Any], object]] = {
        "inspect": _inspect,
        "launch": _launch,
        "signal": _signal,
        "wait_ready": _wait_ready,
        "locate": _locate,
        "tail": _tail,
        "survey": _survey,
    }

    # -- the table ----------------------------------------------------------------------

    def _alive(self, pid: int) -> FakeProcess | None:
        process = self.processes.get(pid)
        return process if process is not None and not process.exited else None

    def _age_lingering(self) -> None:
        for process in list(self.processes.values()):
            if process.exited:
                process.lingers -= 1
                if process.lingers < 0:
                    del self.processes[process.pid]

    def _open(self, process: FakeProcess) -> None:
        process.ports |= process.planned_ports
        process.answers_sql = True

    def _home_exists(self, home: str) -> bool:
        inside = home.rstrip("/") + "/"
        return home in self.initialised_homes or any(path.startswith(inside) for path in self.files)

    def _read_pid_file(self, path: str) -> PidFile:
        text = self.files.get(path)
        if text is None:
            return {"exists": False}
        text = text.strip()
        return {"exists": True, "pid": int(text) if text.isdigit() else None, "raw": text[:32]}

    def _lock_holder(self, path: str) -> int | None:
        for process in self.processes.values():
            if process.lock == path:
                return 0 if process.elsewhere else process.pid
        return None

    def _problems(
        self, process: FakeProcess, binaries: list[str], home: str, pid_file: str
    ) -> list[str]:
        """Why `process` is not the server, as the agent's `identify` tells it."""
        problems = []
        if process.exe not in {self.links.get(path, path) for path in binaries}:
            problems.append(f"pid {process.pid} runs {process.exe}, not {' or '.join(binaries)}")
        if posixpath.normpath(process.cwd) != posixpath.normpath(home):
            problems.append(f"pid {process.pid} works in {process.cwd}, not {home}")
        holder = self._lock_holder(pid_file)
        if holder != process.pid:
            held = "unlocked" if holder is None else f"held by pid {holder}"
            problems.append(f"pid {process.pid} does not hold the lock on {pid_file} ({held})")
        return problems

    def _process_info(self, process: FakeProcess) -> ProcessInfo:
        return {
            "pid": process.pid,
            "state": "S",
            "start_ticks": process.start_ticks,
            "exe": process.exe,
            "exe_error": None,
            "exe_deleted": False,
            "cwd": process.cwd,
            "cwd_error": None,
            "cwd_deleted": False,
            "argv": process.argv,
        }

    def _listeners(self, port: int) -> PortListeners:
        holders = [process for process in self.processes.values() if port in process.ports]
        owners: list[PortListener] = [
            {
                "pid": process.pid,
                "exe": None if process.exited else process.exe,
                "argv": None if process.exited else process.argv,
            }
            for process in holders
            if not process.elsewhere
        ]
        return {"listening": bool(holders), "owners": owners}

    def _sql(self, request: SqlRequest) -> SqlAnswer:
        listener = next(
            (p for p in self.processes.values() if request["port"] in p.ports and not p.exited),
            None,
        )
        if listener is None:
            return {"ok": False, "error": "ConnectionRefusedError: [Errno 111] Connection refused"}
        if not listener.answers_sql:
            return {"ok": False, "error": NOT_SPEAKING_SQL}
        if (
            request.get("user", "root") != "root"
            or request.get("password", "") != listener.password
        ):
            return {"ok": False, "error": ACCESS_DENIED}
        results: list[list[list[str | None]]] = []
        for query in request["queries"]:
            if query == "SELECT 1":
                results.append([["1"]])
            elif query == "SELECT version()":
                results.append([[listener.version]])
            elif listener.statement_error is not None:
                return {"ok": False, "error": f"MysqlError: {listener.statement_error}"}
            else:
                listener.statements.append(query)
                results.append([])
        return {"ok": True, "version": listener.version, "results": results}


class FakeHostAccess(HostAccess):
    """Host access in which every stored host is `host`."""

    def __init__(self, host: FakeHost) -> None:
        super().__init__()
        self.host = host

    def executor(self, key: Hashable, target: HostTarget) -> HostExecutor:
        if key not in self._executors:  # pooled once per key, as hosts are
            self._executors[key] = (target, self.host)
            self._forward_exits(key, self.host, self._exit_listeners)
        return self.host
