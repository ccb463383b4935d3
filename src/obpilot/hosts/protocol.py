"""The host agent's protocol: its hello, each action's request (a JSON line on the agent's
stdin) and its answer (a JSON line on its stdout), and its events, defined once for both
sides. The agent (`obpilot.hosts.agent`) writes the answers and reads the requests; the
drivers (`obpilot.hosts.drivers`, through `obpilot.hosts.agent_link`) write the requests
and read the answers; mypy checks every key either side spells against these
definitions.

These are types only. The agent imports them for type checking alone: on a host it runs
as its own text, with Python 3.7+ and no obpilot, so it needs nothing from here at run
time. Requests type what obpilot sends; where the agent has a default for a key it
tolerates the key's absence, and the key is `NotRequired` here."""

# No `from __future__ import annotations`: TypedDict tells required from optional keys at
# run time only from evaluated annotations, and tests compare those with real answers.
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Literal, NotRequired, TypedDict, TypeVar

ActionName = Literal[
    "inspect",
    "launch",
    "signal",
    "wait_ready",
    "locate",
    "tail",
    "survey",
    "claim_dirs",
    "owners",
    "remove_claimed",
    "move_aside",
    "move_back",
    "file_sha1",
]
#: The signals a driver sends: the clean stop, and the kill after the grace period.
SignalName = Literal["USR1", "KILL"]

# --------------------------------------------------------------------------- requests


class SqlRequest(TypedDict):
    """A MySQL-protocol login (mysql_native_password) and the queries to run."""

    port: int
    queries: list[str]
    host: NotRequired[str]  # default 127.0.0.1
    user: NotRequired[str]  # default root
    password: NotRequired[str]  # default empty
    timeout: NotRequired[float]  # seconds; default 5


class InspectRequest(TypedDict):
    """How to find and check one server: `inspect`, and the actions that end with an
    inspection."""

    pid_file: str
    home: str
    #: Files whose process counts as this server.
    binaries: list[str]
    #: The SQL port.
    port: int
    #: The server's other ports (an observer's RPC port).
    other_ports: list[int]
    #: Run only when the server is identified and something listens on `port`.
    sql: NotRequired[SqlRequest]


class LaunchRequest(InspectRequest):
    """Start a command detached, then wait for the pid file's lock (then inspect)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    #: File the command's output is appended to.
    console: str
    #: Seconds to wait for a daemonising parent to return.
    parent_wait: float
    #: Seconds to wait after that for a new holder of the pid file's lock.
    lock_wait: float
    #: When set: then wait up to this many seconds until the new holder answers SQL.
    ready_timeout: NotRequired[float]


class SignalRequest(TypedDict):
    """Send a signal to `pid` once it is identified again as the server, then wait up to
    `wait_seconds` for it to exit."""

    pid: int
    #: None skips the check that the pid was not reused.
    start_ticks: int | None
    signal: SignalName
    binaries: list[str]
    home: str
    pid_file: str
    wait_seconds: float
    #: When set and the process has exited: then inspect this way until its pid-file
    #: lock and ports are released, at most `settle_seconds`.
    settle: NotRequired[InspectRequest]
    settle_seconds: NotRequired[float]


class WaitReadyRequest(InspectRequest):
    """Poll until `pid` answers SQL (then inspect), exits, or `timeout` seconds pass."""

    pid: int
    start_ticks: int | None
    timeout: float


class LocateRequest(TypedDict):
    """Find the seekdb binary in the pylibseekdb package of the agent's Python."""


class TailRequest(TypedDict):
    """The end of a file."""

    path: str
    bytes: NotRequired[int]  # default 8000


class SurveyRequest(TypedDict):
    """What the host is (its system, Python, memory) and what it offers at `paths` and
    `ports`: whether a server could be prepared there."""

    paths: list[str]  # absolute
    ports: list[int]


class OwnerMarker(TypedDict):
    """What `.obpilot-owner` in a directory says: the cluster, server and task that made
    the directory. obpilot removes or moves only directories whose marker it checked."""

    cluster_id: int
    cluster: str
    server_id: int
    task_id: int


class ClaimDirsRequest(TypedDict):
    """Creates each directory (with its parents) and writes its marker; refuses, creating
    nothing, when one exists with content other than this server's own marker."""

    paths: list[str]
    marker: OwnerMarker


class PathsRequest(TypedDict):
    paths: list[str]


class RemoveClaimedRequest(TypedDict):
    """Removes each directory whose marker names `task_id` (a rolled-back create)."""

    paths: list[str]
    task_id: int


class MoveAsideRequest(TypedDict):
    """Renames each directory whose marker names `cluster_id` to `<path><suffix>`, and
    removes the renamed tree when `purge`."""

    paths: list[str]
    cluster_id: int
    suffix: str
    purge: bool


class MoveBackRequest(TypedDict):
    """Renames `<path><suffix>` back to `<path>` where the path is free again."""

    paths: list[str]
    suffix: str


# --------------------------------------------------------------------------- answers


class PidFile(TypedDict):
    exists: bool
    pid: NotRequired[int | None]  # None: not a number (see `raw`)
    raw: NotRequired[str]  # the first 32 characters
    error: NotRequired[str | None]  # why an existing file cannot be read


class ProcessInfo(TypedDict):
    """A live process as /proc shows it."""

    pid: int
    state: str  # /proc/PID/stat's state letter
    #: /proc/PID/stat's starttime: tells a reused pid apart.
    start_ticks: int
    exe: str | None  # None: unreadable (see exe_error)
    exe_error: str | None
    exe_deleted: bool
    cwd: str | None
    cwd_error: str | None
    cwd_deleted: bool
    argv: list[str]


class InspectedProcess(ProcessInfo):
    """A process that holds the pid file's lock or is named in the pid file."""

    #: Why it is NOT the server; empty when it is.
    problems: list[str]
    #: Its listening ports (looked up only for the server itself).
    listen_ports: list[int]


class PortListener(TypedDict):
    pid: int
    exe: str | None
    argv: list[str] | None


class PortListeners(TypedDict):
    listening: bool
    #: Empty while listening: the owner is not visible to the agent's user.
    owners: list[PortListener]


class SqlSuccess(TypedDict):
    ok: Literal[True]
    version: str  # the server's handshake version
    results: list[list[list[str | None]]]  # per query, its rows


class SqlFailure(TypedDict):
    ok: Literal[False]
    error: str


SqlAnswer = SqlSuccess | SqlFailure


class InspectReport(TypedDict):
    home_exists: bool
    pid_file: PidFile
    #: The pid holding the pid file's fcntl lock; 0: a holder in another pid namespace.
    lock_holder: int | None
    store_initialised: bool
    processes: list[InspectedProcess]
    port: PortListeners
    #: By port number (a JSON key is a string).
    other_ports: dict[str, PortListeners]
    sql: NotRequired[SqlAnswer]


class Ready(TypedDict):
    state: Literal["ready"]
    waited: float
    report: InspectReport


class NotReady(TypedDict):
    #: exited: before answering SQL; denied: it answers, but not to these credentials.
    state: Literal["exited", "denied", "timeout"]
    waited: float
    sql: SqlFailure  # the last SQL check


WaitReadyAnswer = Ready | NotReady


class LaunchAnswer(TypedDict):
    returncode: int | None  # None: the launching parent still runs
    launched_pid: int
    #: The new holder of the pid file's lock; None: nobody took it.
    pid: int | None
    output: str  # the end of what the command wrote this time
    report: NotRequired[InspectReport]  # when `pid` is set
    ready: NotRequired[WaitReadyAnswer]  # when `pid` is set and `ready_timeout` was


class SignalAnswer(TypedDict):
    sent: bool
    gone: bool
    waited: NotRequired[float]  # seconds; absent when refused
    problems: NotRequired[list[str]]  # why it was refused: the pid is not the server
    report: NotRequired[InspectReport]  # when gone and `settle` was asked: what is left


class LocateAnswer(TypedDict):
    binary: str | None  # None: pylibseekdb is not installed for `python`
    python: str


class TailAnswer(TypedDict):
    exists: bool
    size: int
    text: str


class SurveyedPath(TypedDict):
    exists: bool
    is_dir: bool
    #: Up to 5 names, when it is a non-empty directory.
    entries: list[str]
    #: For a missing path: whether it could be created (its nearest existing ancestor is
    #: a writable, searchable directory).
    writable: bool
    #: Free space (for an unprivileged user) and the device, of the path or, when it is
    #: missing, of its nearest existing ancestor.
    free_bytes: int
    device: int


class SurveyedPort(TypedDict):
    listening: bool
    #: The listener, when the agent's user can see it.
    pid: int | None
    command: str | None  # its command line, shortened


class SurveyAnswer(TypedDict):
    python: str  # the agent's Python: "3.11.2"
    proc: bool  # whether /proc is mounted
    timeout: str | None  # coreutils' `timeout` on the PATH; None: missing
    operating_system: str  # "Linux 6.1.0-18-amd64 (Debian GNU/Linux 12 (bookworm))"
    architecture: str  # "x86_64"
    cpu_count: int
    memory_total: int  # bytes
    memory_available: int  # bytes (MemAvailable)
    paths: dict[str, SurveyedPath]
    #: By port number (a JSON key is a string).
    ports: dict[str, SurveyedPort]


class ClaimDirsAnswer(TypedDict):
    claimed: list[str]  # empty when refused
    #: Why a path cannot be claimed; when any is, nothing was created.
    refused: dict[str, str]


class OwnersAnswer(TypedDict):
    #: Each path's marker; None: the path is missing, or has no readable marker.
    markers: dict[str, OwnerMarker | None]
    exists: dict[str, bool]


class DirsChangedAnswer(TypedDict):
    changed: list[str]  # removed, moved or moved back
    #: What was left alone and why (another owner, missing, the way back taken).
    skipped: dict[str, str]


class FileSha1Answer(TypedDict):
    sha1: dict[str, str | None]  # None: missing or unreadable


# --------------------------------------------------------------------------- messages


class AgentHello(TypedDict):
    """The agent's first line."""

    agent: str  # its version: the hash of its text
    pid: int
    #: How it sees exits: "pidfd" at once, "proc" by a short poll (no pidfds here).
    exit_watch: Literal["pidfd", "proc"]


class AgentAnswered(TypedDict):
    id: int
    answer: object  # the action's answer, in the shape its `Action` names


class AgentFailed(TypedDict):
    """An action whose code raised: the error, reported instead of an answer."""

    id: int
    error: str


AgentReply = AgentAnswered | AgentFailed


class AgentEvent(TypedDict):
    """A server process the agent had identified has exited."""

    event: Literal["exit"]
    pid: int
    start_ticks: int
    home: str  # the server's home, as the request that identified it named it


# --------------------------------------------------------------------------- actions

RequestT = TypeVar("RequestT", bound=Mapping[str, object])
AnswerT = TypeVar("AnswerT")


@dataclass(frozen=True)
class Action(Generic[RequestT, AnswerT]):
    """An agent action; its type pairs the request it takes with the answer it gives."""

    name: ActionName
    #: The answer's keys whose text keeps its line breaks (a file's end, a command's
    #: output); every other text of an answer reaches obpilot as one line.
    lines: tuple[str, ...] = ()


INSPECT: Action[InspectRequest, InspectReport] = Action("inspect")
LAUNCH: Action[LaunchRequest, LaunchAnswer] = Action("launch", lines=("output",))
SIGNAL: Action[SignalRequest, SignalAnswer] = Action("signal")
WAIT_READY: Action[WaitReadyRequest, WaitReadyAnswer] = Action("wait_ready")
LOCATE: Action[LocateRequest, LocateAnswer] = Action("locate")
TAIL: Action[TailRequest, TailAnswer] = Action("tail", lines=("text",))
SURVEY: Action[SurveyRequest, SurveyAnswer] = Action("survey")
CLAIM_DIRS: Action[ClaimDirsRequest, ClaimDirsAnswer] = Action("claim_dirs")
OWNERS: Action[PathsRequest, OwnersAnswer] = Action("owners")
REMOVE_CLAIMED: Action[RemoveClaimedRequest, DirsChangedAnswer] = Action("remove_claimed")
MOVE_ASIDE: Action[MoveAsideRequest, DirsChangedAnswer] = Action("move_aside")
MOVE_BACK: Action[MoveBackRequest, DirsChangedAnswer] = Action("move_back")
FILE_SHA1: Action[PathsRequest, FileSha1Answer] = Action("file_sha1")
