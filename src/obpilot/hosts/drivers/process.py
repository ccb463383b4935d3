"""What a process driver works with and answers: a server process's stored facts
(`ProcessSpec`), its bounds (`ProcessTimeouts`), what a look finds (`ProcessStatus`), why an
action failed (`Cause`), and the `ProcessDriver` protocol every driver follows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from obpilot.hosts.executor import HostExecutor, StepLog, discard_log
from obpilot.settings import Settings


class ProcessState(StrEnum):
    RUNNING = "RUNNING"  # the identified server process answers SQL
    STARTING = "STARTING"  # the identified server process does not answer SQL (yet)
    STOPPED = "STOPPED"  # no process of this server
    CONFLICT = "CONFLICT"  # the pid file or base dir is held by something else


class Cause(StrEnum):
    """Why a start or stop failed (`ServerProcessError.cause`)."""

    BINARY_NOT_FOUND = "BINARY_NOT_FOUND"
    PORT_BUSY = "PORT_BUSY"
    BASE_DIR_IN_USE = "BASE_DIR_IN_USE"
    BAD_PARAMETER = "BAD_PARAMETER"
    START_FAILED = "START_FAILED"
    NOT_READY = "NOT_READY"
    NOT_OURS = "NOT_OURS"
    STILL_RUNNING = "STILL_RUNNING"
    PORT_STILL_OPEN = "PORT_STILL_OPEN"


@dataclass(frozen=True)
class ProcessSpec:
    """What obpilot stores about one server process: enough to find it, check it and
    rebuild its start command."""

    kind: str  # "seekdb" or "observer"
    sql_port: int
    #: seekdb: its base dir; observer: its home path (bin/observer, run/, etc/, log/).
    home_path: str
    rpc_port: int | None = None
    #: seekdb: default found through the pylibseekdb package of the host's python3;
    #: observer: default HOME/bin/observer.
    binary_path: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Cluster facts an observer's start command carries.
    zone_name: str | None = None
    cluster_name: str | None = None
    ob_cluster_id: int | None = None
    #: The address the cluster knows this server by (observer `-I`, minor freeze scope).
    server_ip: str | None = None
    sql_user: str = "root"
    sql_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ProcessTimeouts:
    start: float = 120.0  # launch until SQL answers
    stop_grace: float = 60.0  # clean stop, then SIGKILL
    kill: float = 30.0  # after SIGKILL: pid gone, port closed
    probe: float = 30.0  # one look at the host
    sql: float = 5.0  # one SQL login + query (SELECT 1) on the host

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessTimeouts:
        return cls(
            start=settings.process_start_timeout,
            stop_grace=settings.process_stop_grace,
            kill=settings.process_kill_timeout,
        )


@dataclass(frozen=True)
class PortOwner:
    pid: int
    exe: str | None


@dataclass(frozen=True)
class ProcessIdentity:
    """A server process as a look identified it: its pid and start time, which the agent
    checks again (with the binary, directory and lock) before it signals that pid."""

    pid: int
    start_ticks: int

    def text(self) -> str:
        return f"{self.pid}:{self.start_ticks}"

    @classmethod
    def parse(cls, text: str | None) -> ProcessIdentity | None:
        pid, _, ticks = (text or "").partition(":")
        return cls(int(pid), int(ticks)) if pid.isdigit() and ticks.isdigit() else None


@dataclass(frozen=True)
class ProcessStatus:
    state: ProcessState
    home: str
    sql_port: int
    pid: int | None = None
    start_ticks: int | None = None  # /proc/PID/stat starttime: tells a reused pid apart
    binary: str | None = None
    port_in_use: bool = False
    port_owners: tuple[PortOwner, ...] = ()
    #: The server's other ports (an observer's RPC port) that something listens on.
    other_ports_in_use: tuple[int, ...] = ()
    listen_ports: tuple[int, ...] = ()
    sql_error: str | None = None
    version: str | None = None
    initialised: bool = False
    notes: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.state == ProcessState.RUNNING

    @property
    def identity(self) -> ProcessIdentity | None:
        """This server's process, when the look identified it (running or starting)."""
        if self.state not in (ProcessState.RUNNING, ProcessState.STARTING):
            return None
        if self.pid is None or self.start_ticks is None:
            return None
        return ProcessIdentity(self.pid, self.start_ticks)

    def describe(self) -> str:
        if self.state == ProcessState.RUNNING:
            text = f"RUNNING: pid {self.pid} ({self.binary}) answers SQL on port {self.sql_port}"
            if self.version:
                text += f", version {self.version}"
        elif self.state == ProcessState.STARTING:
            text = (
                f"STARTING: pid {self.pid} ({self.binary}) runs but does not answer SQL on "
                f"port {self.sql_port} ({self.sql_error or 'port not open'})"
            )
        elif self.state == ProcessState.STOPPED:
            text = "STOPPED: no process"
        else:
            text = "CONFLICT"
        return "; ".join([text, *self.notes])


@runtime_checkable
class ProcessDriver(Protocol):
    """Drives one server process on one host. Every operation is idempotent (already in
    the wanted state is success), bounded by a timeout, verified on the host, and writes
    its steps through `log` (the task engine passes the running subtask's log)."""

    spec: ProcessSpec
    executor: HostExecutor

    @property
    def label(self) -> str: ...

    async def status(self, *, log: StepLog = discard_log) -> ProcessStatus: ...

    async def start(
        self, *, log: StepLog = discard_log, time_limit: float | None = None
    ) -> ProcessStatus: ...

    async def stop(
        self,
        *,
        log: StepLog = discard_log,
        force: bool = False,
        freeze: bool = False,
        grace: float | None = None,
        identified: ProcessIdentity | None = None,
    ) -> ProcessStatus: ...
