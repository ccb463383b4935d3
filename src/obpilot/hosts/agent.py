"""The host agent: a self-contained script that obpilot starts on a host (a child process
for this machine, a command on the pooled SSH connection for others) and keeps running
while it needs the host, to look at and act on server processes there. It needs only
the Python 3.7+ standard library and Linux's /proc, so a host needs nothing installed
beyond `python3`, and nothing is left behind: the agent listens on no port and exits when
its stdin closes, so it never outlives obpilot's connection.

How it starts (`BOOTSTRAP`): the interpreter reads one line with the size of this text,
then the text itself, from stdin, and runs it. The agent answers with a hello line that
names its version (a hash of its own text: obpilot replaces an agent of another version,
never trusts it), then serves one JSON request per line (`id`, `action`, the action's
arguments) and writes one JSON line per answer (`id` and `answer`, or `id` and `error`),
several requests in flight at once, each on its own thread. Secrets such as a SQL
password travel only in requests on stdin. Between answers it writes events: the exit of
a server process it has identified, seen the moment it happens (a pidfd, or a short /proc
poll where the kernel has none). Messages are typed in `obpilot.hosts.protocol`, imported
here for type checking only: this file travels alone.

Actions:
  inspect      pid file, its fcntl lock holder, the process behind it (binary, working
               directory, start time), listeners on the SQL port and their owners, and
               optionally a MySQL-protocol login plus queries (`SELECT 1`).
  launch       start a command detached (own session, stdin /dev/null, output appended to
               a console file), wait for a daemonising parent, then for the pid-file lock;
               optionally then until the server answers SQL.
  signal       send a signal to a pid, but only after re-checking, in the same process
               and just before the kill, that it is still the identified server; then
               wait (bounded) for it to exit, and optionally until its pid-file lock and
               ports are released.
  wait_ready   wait until the server holds its pid-file lock and answers SQL, or exits.
  locate       find the seekdb binary inside the pylibseekdb package of this Python.
  tail         the end of a (log) file.
  survey       the host itself (Python, /proc, `timeout`, system, memory) and what it
               offers at some paths (free space, whether writable) and ports (listeners).
  claim_dirs   create a server's directories, each with an ownership marker
               (`.obpilot-owner`: cluster, server, task), or refuse and create none.
  owners       read the markers of some directories.
  remove_claimed  remove the directories a given task claimed (a rolled-back create).
  move_aside   rename a cluster's marked directories to `<dir><suffix>` (and optionally
               remove them); move_back renames them back.
  file_sha1    the SHA-1 of some files (an installed package's files, verified).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Literal

    from obpilot.hosts.protocol import (
        ActionName,
        AgentEvent,
        AgentHello,
        AgentReply,
        ClaimDirsAnswer,
        ClaimDirsRequest,
        DirsChangedAnswer,
        FileSha1Answer,
        InspectedProcess,
        InspectReport,
        InspectRequest,
        LaunchAnswer,
        LaunchRequest,
        LocateAnswer,
        LocateRequest,
        MoveAsideRequest,
        MoveBackRequest,
        OwnerMarker,
        OwnersAnswer,
        PathsRequest,
        PidFile,
        PortListener,
        PortListeners,
        ProcessInfo,
        RemoveClaimedRequest,
        SignalAnswer,
        SignalRequest,
        SqlAnswer,
        SqlFailure,
        SqlRequest,
        SqlSuccess,
        SurveyAnswer,
        SurveyedPath,
        SurveyedPort,
        SurveyRequest,
        TailAnswer,
        TailRequest,
        WaitReadyAnswer,
        WaitReadyRequest,
    )

# --------------------------------------------------------------------------- environment

#: What of a parent's environment a child of obpilot's keeps: where programs are, the
#: locale and the time zone. Nothing else: obpilot's own may hold its admin password,
#: secret key or metadb URL (OBPILOT_*), and a server needs none of the rest.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


def minimal_environment(environment: Mapping[str, str]) -> dict[str, str]:
    return {name: environment[name] for name in INHERITED_VARIABLES if name in environment}


# --------------------------------------------------------------------------- processes


def process_info(pid: int) -> ProcessInfo | None:
    """What /proc says about a live process, or None if there is none (a zombie has
    exited: it only waits to be reaped)."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    state = fields[0]
    if state in ("Z", "X", "x"):
        return None
    exe, exe_error, exe_deleted = _proc_link(pid, "exe")
    cwd, cwd_error, cwd_deleted = _proc_link(pid, "cwd")
    return {
        "pid": pid,
        "state": state,
        "start_ticks": int(fields[19]),
        "exe": exe,
        "exe_error": exe_error,
        "exe_deleted": exe_deleted,
        "cwd": cwd,
        "cwd_error": cwd_error,
        "cwd_deleted": cwd_deleted,
        "argv": _proc_argv(pid),
    }


def _proc_link(pid: int, name: str) -> tuple[str | None, str | None, bool]:
    """Where /proc/PID/`name` points, why it cannot be read, and whether it points to a
    deleted file."""
    try:
        target = os.readlink(f"/proc/{pid}/{name}")
    except OSError as error:
        return None, error.strerror, False
    if target.endswith(" (deleted)"):
        return target[: -len(" (deleted)")], None, True
    return target, None, False


def _proc_argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [part.decode(errors="replace") for part in handle.read().split(b"\0")]
    except OSError:
        return []
    if argv and argv[-1] == "":
        argv.pop()
    return argv


def lock_holder(path: str) -> int | None:
    """The pid holding a POSIX (fcntl/lockf) lock on `path`, asked with F_GETLK so that
    nothing is ever locked by the agent itself (a lock taken even briefly could make a
    starting server fail). 0 means a holder in another pid namespace."""
    import fcntl

    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        # struct flock on 64-bit Linux: short type, short whence, off_t start, off_t len,
        # pid_t pid (+ padding).
        request = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(descriptor, fcntl.F_GETLK, request)
        lock_type, _, _, _, holder = struct.unpack("hhqqi4x", answer)
    finally:
        os.close(descriptor)
    if lock_type == fcntl.F_UNLCK:
        return None
    return int(holder)


def read_pid_file(path: str) -> PidFile:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(64).decode(errors="replace")
    except FileNotFoundError:
        return {"exists": False}
    except OSError as error:
        return {"exists": True, "error": error.strerror}
    text = raw.strip()
    return {"exists": True, "pid": int(text) if text.isdigit() else None, "raw": text[:32]}


def _real(path: str | None) -> str | None:
    return os.path.realpath(path) if path else None


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def runs_binary(info: ProcessInfo, binaries: list[str]) -> bool:
    """The process runs one of `binaries`: its /proc/PID/exe is that file, or, for a
    binary that is a script (`#!`), the interpreter was started on that file."""
    wanted = {_real(path) for path in binaries if path}
    if _real(info["exe"]) in wanted:
        return True
    argv = info["argv"]
    scripts = {path for path in wanted if path and _is_script(path)}
    return len(argv) >= 2 and _real(argv[1]) in scripts


def identify(
    pid: int, binaries: list[str], home: str, pid_file: str, start_ticks: int | None = None
) -> tuple[ProcessInfo | None, list[str]]:
    """The process `pid` and the reasons it is NOT the server (empty when it is)."""
    info = process_info(pid)
    if info is None:
        return None, [f"no process {pid}"]
    problems = []
    if start_ticks is not None and info["start_ticks"] != start_ticks:
        problems.append(f"pid {pid} was reused by a newer process")
    if info["exe"] is None and not info["argv"]:
        problems.append(f"cannot read /proc/{pid}/exe ({info['exe_error'] or 'unknown'})")
    elif not runs_binary(info, binaries):
        running = info["exe"] or (info["argv"] or ["?"])[0]
        problems.append(f"pid {pid} runs {running}, not {' or '.join(binaries)}")
    if _real(info["cwd"]) != _real(home):
        problems.append(f"pid {pid} works in {info['cwd']}, not {home}")
    holder = lock_holder(pid_file)
    if holder != pid:
        held = "unlocked" if holder is None else f"held by pid {holder}"
        problems.append(f"pid {pid} does not hold the lock on {pid_file} ({held})")
    return info, problems


# --------------------------------------------------------------------------- sockets


def _listening_sockets() -> dict[int, int]:
    """inode -> port of every listening TCP socket (IPv4 and IPv6)."""
    try:
        return _listening_sockets_netlink()
    except OSError:  # no sock_diag here (an old kernel, a sandbox): the slower /proc tables
        return _listening_sockets_proc()


#: sock_diag (netlink) constants: linux/sock_diag.h, linux/inet_diag.h, linux/netlink.h.
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10


def _listening_sockets_netlink() -> dict[int, int]:
    """Asks the kernel for its listening TCP sockets alone: far cheaper than reading
    /proc/net/tcp, which the kernel renders from every socket on the host."""
    sockets: dict[int, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4) as diag:  # NETLINK_SOCK_DIAG
        for sequence, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            request = struct.pack("=BBBxI48x", family, socket.IPPROTO_TCP, 0, 1 << _TCP_LISTEN)
            header = struct.pack(
                "=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, sequence, 0
            )
            diag.send(header + request)
            done = False
            while not done:
                data = diag.recv(65536)
                if not data:
                    raise OSError("sock_diag closed")
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if length < 16:
                        raise OSError("a malformed sock_diag answer")
                    if kind == _NLMSG_DONE:
                        done = True
                        break
                    if kind == _NLMSG_ERROR:
                        raise OSError("sock_diag refused the request")
                    body = offset + 16
                    port = struct.unpack_from("!H", data, body + 4)[0]
                    inode = struct.unpack_from("=I", data, body + 68)[0]
                    sockets[inode] = port
                    offset += (length + 3) & ~3
    return sockets


def _listening_sockets_proc() -> dict[int, int]:
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # TCP_LISTEN
                port = int(fields[1].rsplit(":", 1)[1], 16)
                sockets[int(fields[9])] = port
    return sockets


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def port_listeners(port: int, likely: Sequence[int] = ()) -> PortListeners:
    """Whether anything listens on `port`, and which processes (when /proc lets us see
    their file descriptors): one of the `likely` pids if it holds the port (no look at
    every other process), else all that do."""
    inodes = {inode for inode, bound in _listening_sockets().items() if bound == port}
    owners: list[PortListener] = []
    if inodes:
        holders = [pid for pid in likely if _socket_inodes(pid) & inodes]
        if not holders:
            holders = [
                int(entry)
                for entry in os.listdir("/proc")
                if entry.isdigit() and _socket_inodes(int(entry)) & inodes
            ]
        for pid in holders:
            info = process_info(pid)
            owners.append(
                {
                    "pid": pid,
                    "exe": info["exe"] if info else None,
                    "argv": info["argv"] if info else None,
                }
            )
    return {"listening": bool(inodes), "owners": owners}


def listen_ports(pid: int) -> list[int]:
    sockets = _listening_sockets()
    return sorted({sockets[inode] for inode in _socket_inodes(pid) if inode in sockets})


# --------------------------------------------------------------------------- MySQL protocol


class MysqlError(Exception):
    pass


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MysqlError("connection closed by the server")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    header = _recv_exact(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], _recv_exact(sock, length)


def _write_packet(sock: socket.socket, sequence: int, payload: bytes) -> None:
    sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([sequence & 0xFF]) + payload)


def native_password_scramble(password: bytes, salt: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()  # noqa: S324 - the protocol's own hash
    stage2 = hashlib.sha1(stage1).digest()  # noqa: S324
    mix = hashlib.sha1(salt + stage2).digest()  # noqa: S324
    return bytes(stage1[i] ^ mix[i] for i in range(len(stage1)))


def _lenenc_int(data: bytes, pos: int) -> tuple[int | None, int]:
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFB:
        return None, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def _error_text(packet: bytes) -> str:
    code = struct.unpack("<H", packet[1:3])[0]
    if packet[3:4] == b"#":
        state = packet[4:9].decode(errors="replace")
        return f"ERROR {code} ({state}): {packet[9:].decode(errors='replace')}"
    return f"ERROR {code}: {packet[3:].decode(errors='replace')}"


def _is_eof(packet: bytes) -> bool:
    return packet[:1] == b"\xfe" and len(packet) < 9


def _read_result(sock: socket.socket) -> list[list[str | None]]:
    _, packet = _read_packet(sock)
    if packet[:1] == b"\xff":
        raise MysqlError(_error_text(packet))
    if packet[:1] == b"\x00":
        return []
    columns, _ = _lenenc_int(packet, 0)
    for _ in range(columns or 0):
        _read_packet(sock)
    _, packet = _read_packet(sock)
    if not _is_eof(packet):
        raise MysqlError("unexpected packet after the column definitions")
    rows: list[list[str | None]] = []
    while True:
        _, packet = _read_packet(sock)
        if _is_eof(packet):
            return rows
        if packet[:1] == b"\xff":
            raise MysqlError(_error_text(packet))
        row: list[str | None] = []
        pos = 0
        for _ in range(columns or 0):
            size, pos = _lenenc_int(packet, pos)
            if size is None:
                row.append(None)
            else:
                row.append(packet[pos : pos + size].decode(errors="replace"))
                pos += size
        rows.append(row)


CLIENT_CAPABILITIES = (
    0x00000001  # LONG_PASSWORD
    | 0x00000004  # LONG_FLAG
    | 0x00000200  # PROTOCOL_41
    | 0x00002000  # TRANSACTIONS
    | 0x00008000  # SECURE_CONNECTION
    | 0x00020000  # MULTI_RESULTS
    | 0x00080000  # PLUGIN_AUTH
)


def mysql_session(
    host: str, port: int, user: str, password: str, queries: list[str], timeout: float
) -> SqlSuccess:
    """Logs in (mysql_native_password) and runs `queries`; returns the server's
    handshake version and each query's rows."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.settimeout(timeout)
        sequence, handshake = _read_packet(sock)
        if handshake[:1] == b"\xff":
            raise MysqlError(_error_text(handshake))
        if handshake[:1] != b"\x0a":
            raise MysqlError("not a MySQL protocol 10 handshake")
        end = handshake.index(b"\0", 1)
        version = handshake[1:end].decode(errors="replace")
        pos = end + 1 + 4
        salt = handshake[pos : pos + 8]
        pos += 8 + 1 + 2
        if pos + 16 <= len(handshake):
            auth_length = handshake[pos + 5]
            pos += 16
            salt += handshake[pos : pos + max(13, auth_length - 8)].rstrip(b"\0")
        secret = password.encode()
        scramble = native_password_scramble(secret, salt[:20])
        response = (
            struct.pack("<IIB", CLIENT_CAPABILITIES, 1 << 24, 45)
            + b"\0" * 23
            + user.encode()
            + b"\0"
            + bytes([len(scramble)])
            + scramble
            + b"mysql_native_password\0"
        )
        _write_packet(sock, sequence + 1, response)
        sequence, packet = _read_packet(sock)
        if packet[:1] == b"\xfe":  # auth switch request
            end = packet.index(b"\0", 1)
            plugin = packet[1:end].decode(errors="replace")
            if plugin != "mysql_native_password":
                raise MysqlError("the server asks for the unsupported auth plugin " + plugin)
            _write_packet(
                sock, sequence + 1, native_password_scramble(secret, packet[end + 1 :][:20])
            )
            sequence, packet = _read_packet(sock)
        if packet[:1] == b"\xff":
            raise MysqlError(_error_text(packet))
        if packet[:1] != b"\x00":
            raise MysqlError("unexpected answer to the login")
        results = []
        for query in queries:
            _write_packet(sock, 0, b"\x03" + query.encode())
            results.append(_read_result(sock))
        _write_packet(sock, 0, b"\x01")  # COM_QUIT
        return {"ok": True, "version": version, "results": results}
    finally:
        sock.close()


def sql_check(request: SqlRequest) -> SqlAnswer:
    try:
        return mysql_session(
            request.get("host", "127.0.0.1"),
            request["port"],
            request.get("user", "root"),
            request.get("password") or "",
            request["queries"],
            request.get("timeout", 5.0),
        )
    except (OSError, MysqlError, ValueError, IndexError, KeyError, struct.error) as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


# --------------------------------------------------------------------------- actions


def inspect(request: InspectRequest) -> InspectReport:
    pid_file = request["pid_file"]
    home = request["home"]
    binaries = request["binaries"]
    home_exists = os.path.isdir(home)
    named = read_pid_file(pid_file)
    holder = lock_holder(pid_file)
    store_initialised = bool(_entries(os.path.join(home, "store")))
    candidates = []
    for pid in (holder, named.get("pid")):
        if pid and pid not in candidates:
            candidates.append(pid)
    processes: list[InspectedProcess] = []
    for pid in candidates:
        info, problems = identify(pid, binaries, home, pid_file)
        if info is not None:
            listening = listen_ports(pid) if not problems else []
            processes.append({**info, "problems": problems, "listen_ports": listening})
    report: InspectReport = {
        "home_exists": home_exists,
        "pid_file": named,
        "lock_holder": holder,
        "store_initialised": store_initialised,
        "processes": processes,
        "port": port_listeners(request["port"], candidates),
        "other_ports": {
            str(other): port_listeners(other, candidates)
            for other in request.get("other_ports") or []
        },
    }
    sql = request.get("sql")
    identified = any(not process["problems"] for process in processes)
    # No SQL login to a port that some other program holds.
    if sql is not None and identified and report["port"]["listening"]:
        report["sql"] = sql_check(sql)
    return report


def _entries(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def launch(request: LaunchRequest) -> LaunchAnswer:
    console = request["console"]
    os.makedirs(request["cwd"], exist_ok=True)
    os.makedirs(os.path.dirname(console), exist_ok=True)
    before = os.path.getsize(console) if os.path.exists(console) else 0
    previous_holder = lock_holder(request["pid_file"])
    previous_pid = read_pid_file(request["pid_file"]).get("pid")
    env = minimal_environment(os.environ)
    env.update(request.get("env") or {})
    with open(console, "ab") as output:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        output.write(f"\n=== obpilot launch {stamp}: {' '.join(request['argv'])}\n".encode())
        output.flush()
        try:
            process = subprocess.Popen(  # noqa: S603 - argv built by the driver, no shell
                request["argv"],
                cwd=request["cwd"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as error:  # answered as a shell would: the command cannot run
            why = f"cannot run {request['argv'][0]}: {error.strerror}"
            return {"returncode": 127, "launched_pid": 0, "pid": None, "output": why}
    try:
        returncode: int | None = process.wait(request.get("parent_wait", 30.0))
    except subprocess.TimeoutExpired:
        returncode = None
    holder = None
    if returncode in (0, None):
        deadline = time.monotonic() + request.get("lock_wait", 10.0)
        while True:
            holder = lock_holder(request["pid_file"])
            if holder and holder != previous_holder:
                break
            named = read_pid_file(request["pid_file"]).get("pid")
            daemon_died = named and named != previous_pid and process_info(named) is None
            if daemon_died or process.poll() not in (None, 0) or time.monotonic() >= deadline:
                holder = None
                break
            time.sleep(0.01)
        returncode = process.poll() if returncode is None else returncode
    with open(console, "rb") as handle:
        handle.seek(before)
        output_text = handle.read()[-4000:].decode(errors="replace")
    answer: LaunchAnswer = {
        "returncode": returncode,
        "launched_pid": process.pid,
        "pid": holder,
        "output": output_text,
    }
    if holder:
        answer["report"] = inspect(request)
        ready_timeout = request.get("ready_timeout")
        if ready_timeout is not None:
            processes = answer["report"]["processes"]
            ticks = next((p["start_ticks"] for p in processes if p["pid"] == holder), None)
            answer["ready"] = wait_ready(
                {
                    "pid_file": request["pid_file"],
                    "home": request["home"],
                    "binaries": request["binaries"],
                    "port": request["port"],
                    "other_ports": request["other_ports"],
                    "sql": request.get("sql") or {"port": request["port"], "queries": []},
                    "pid": holder,
                    "start_ticks": ticks,
                    "timeout": ready_timeout,
                }
            )
    return answer


def send_signal(request: SignalRequest) -> SignalAnswer:
    """Re-identifies `pid` (same start time, binary, directory, lock), sends the signal,
    then waits up to `wait_seconds` for it to exit; with `settle`, then waits until the
    server's pid-file lock and ports are released and reports what is left."""
    pid = request["pid"]
    started = time.monotonic()
    info, problems = identify(
        pid, request["binaries"], request["home"], request["pid_file"], request["start_ticks"]
    )
    if problems and info is not None:
        return {"sent": False, "gone": False, "problems": problems}
    sent = False
    if info is not None:
        try:
            os.kill(pid, getattr(signal, "SIG" + request["signal"]))
            sent = True
        except ProcessLookupError:
            pass
    gone = wait_exit(pid, request["start_ticks"], started + request.get("wait_seconds", 0.0))
    answer: SignalAnswer = {"sent": sent, "gone": gone, "waited": time.monotonic() - started}
    settle = request.get("settle")
    if gone and settle is not None:
        answer["report"] = settled(settle, started + request.get("settle_seconds", 0.0))
    return answer


def wait_exit(pid: int, start_ticks: int | None, deadline: float) -> bool:
    """Whether `pid` (started at `start_ticks`) has exited by `deadline`: woken by its
    pidfd the moment it exits, or by a short /proc poll where there is no pidfd."""
    descriptor = _pidfd(pid, start_ticks)
    if descriptor is not None:
        try:
            poller = select.poll()
            poller.register(descriptor, select.POLLIN)
            poller.poll(max(0.0, deadline - time.monotonic()) * 1000)
        finally:
            os.close(descriptor)
    while True:
        if _gone(pid, start_ticks):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _pidfd(pid: int, start_ticks: int | None) -> int | None:
    """A pidfd of the process `pid` if it is still the one started at `start_ticks`
    (checked after opening, so a reused pid is never watched); None without pidfds."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        descriptor = int(opener(pid))
    except OSError:
        return None
    if _gone(pid, start_ticks):
        os.close(descriptor)
        return None
    return descriptor


def settled(request: InspectRequest, deadline: float) -> InspectReport:
    """Inspects until no process of the server holds its pid-file lock and nothing
    listens on its ports (a server's last threads can hold them a moment after its main
    thread has gone), or until `deadline`; returns the last inspection."""
    while True:
        report = inspect(request)
        if released(report) or time.monotonic() >= deadline:
            return report
        time.sleep(0.02)


def released(report: InspectReport) -> bool:
    """Nothing holds the server's pid-file lock or listens on its ports."""
    return (
        report["lock_holder"] is None
        and not report["port"]["listening"]
        and not any(listeners["listening"] for listeners in report["other_ports"].values())
    )


def _gone(pid: int, start_ticks: int | None) -> bool:
    info = process_info(pid)
    return info is None or (start_ticks is not None and info["start_ticks"] != start_ticks)


def wait_ready(request: WaitReadyRequest) -> WaitReadyAnswer:
    """Polls until `pid` answers SQL (then returns a full `inspect` report), exits, or
    `timeout` passes."""
    pid, start_ticks = request["pid"], request["start_ticks"]
    started = time.monotonic()
    deadline = started + request["timeout"]
    last: SqlFailure = {"ok": False, "error": "the SQL port is not open yet"}
    sql = request.get("sql") or {"port": request["port"], "queries": []}
    while True:
        if _gone(pid, start_ticks):
            return {"state": "exited", "waited": time.monotonic() - started, "sql": last}
        if port_listeners(request["port"])["listening"]:
            checked = sql_check({**sql, "queries": ["SELECT 1"]})
            if checked["ok"]:
                waited = time.monotonic() - started
                return {"state": "ready", "waited": waited, "report": inspect(request)}
            last = checked
            if "ERROR 1045" in last["error"]:  # it answers, but not to these credentials
                return {"state": "denied", "waited": time.monotonic() - started, "sql": last}
        if time.monotonic() >= deadline:
            return {"state": "timeout", "waited": time.monotonic() - started, "sql": last}
        time.sleep(0.03)


def locate(_request: LocateRequest) -> LocateAnswer:
    import importlib.util

    spec = importlib.util.find_spec("pylibseekdb")
    if spec is None or not spec.submodule_search_locations:
        return {"binary": None, "python": sys.executable}
    return {
        "binary": os.path.join(next(iter(spec.submodule_search_locations)), "seekdb"),
        "python": sys.executable,
    }


def tail(request: TailRequest) -> TailAnswer:
    path = request["path"]
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            handle.seek(max(0, size - request.get("bytes", 8000)))
            return {"exists": True, "size": size, "text": handle.read().decode(errors="replace")}
    except OSError:
        return {"exists": False, "size": 0, "text": ""}


def survey(request: SurveyRequest) -> SurveyAnswer:
    """The host and what it offers at the requested paths and ports. Bounded: a few small
    files of /proc and /etc, one stat per path, at most 5 directory entries read."""
    system = os.uname()
    memory = _meminfo()
    return {
        "python": ".".join(str(part) for part in sys.version_info[:3]),
        "proc": os.path.isdir("/proc/self"),
        "timeout": shutil.which("timeout"),
        "operating_system": _operating_system(system.sysname, system.release),
        "architecture": system.machine,
        "cpu_count": os.cpu_count() or 0,
        "memory_total": memory.get("MemTotal", 0),
        "memory_available": memory.get("MemAvailable", 0),
        "paths": {path: survey_path(path) for path in request.get("paths") or []},
        "ports": {str(port): _survey_port(port) for port in request.get("ports") or []},
    }


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes, by field."""
    fields: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                amount = value.split()
                if amount and amount[0].isdigit():
                    unit = 1024 if amount[1:] == ["kB"] else 1
                    fields[name] = int(amount[0]) * unit
    except OSError:
        pass
    return fields


def _operating_system(kernel: str, release: str) -> str:
    """The kernel, and the distribution's name from os-release when there is one."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as handle:
                for line in handle:
                    if line.startswith("PRETTY_NAME="):
                        name = line.split("=", 1)[1].strip().strip("\"'")
                        return f"{kernel} {release} ({name})"
        except OSError:
            continue
    return f"{kernel} {release}"


def survey_path(path: str) -> SurveyedPath:
    if not os.path.isabs(path):
        raise ValueError(f"not an absolute path: {path}")
    exists = os.path.exists(path)
    anchor = path
    while not os.path.exists(anchor):
        anchor = os.path.dirname(anchor)
    is_dir = os.path.isdir(anchor)
    if exists and not is_dir:
        writable = os.access(path, os.W_OK)
    else:  # a file can be made in it, or it can be made in its ancestor
        writable = is_dir and os.access(anchor, os.W_OK | os.X_OK)
    space = os.statvfs(anchor)
    return {
        "exists": exists,
        "is_dir": exists and is_dir,
        "entries": _first_entries(path, 5) if exists and is_dir else [],
        "writable": writable,
        "free_bytes": space.f_bavail * space.f_frsize,
        "device": os.stat(anchor).st_dev,
    }


def _first_entries(path: str, count: int) -> list[str]:
    """Up to `count` names in a directory, read without listing a big one whole."""
    names: list[str] = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                names.append(entry.name)
                if len(names) == count:
                    break
    except OSError:
        pass
    return names


#: How much of a listener's command line a survey reports.
COMMAND_SHOWN = 200


def _survey_port(port: int) -> SurveyedPort:
    listeners = port_listeners(port)
    owner = listeners["owners"][0] if listeners["owners"] else None
    if owner is None:
        return {"listening": listeners["listening"], "pid": None, "command": None}
    command = " ".join(owner["argv"] or []) or owner["exe"]
    return {
        "listening": True,
        "pid": owner["pid"],
        "command": command[:COMMAND_SHOWN] if command else None,
    }


# --------------------------------------------------------------------------- directories

OWNER_MARKER = ".obpilot-owner"


def read_marker(path: str) -> OwnerMarker | None:
    try:
        with open(os.path.join(path, OWNER_MARKER), encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    keys = ("cluster_id", "cluster", "server_id", "task_id")
    if not isinstance(marker, dict) or any(key not in marker for key in keys):
        return None
    return {
        "cluster_id": int(marker["cluster_id"]),
        "cluster": str(marker["cluster"]),
        "server_id": int(marker["server_id"]),
        "task_id": int(marker["task_id"]),
    }


def _claim_refusal(path: str, marker: OwnerMarker) -> str | None:
    """Why `path` cannot become this server's directory; None: it can."""
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path)):
        return "exists and is not a directory"
    if not os.path.exists(path):
        parent = path
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot be created: {parent} is not writable"
        return None
    entries = sorted(os.listdir(path))
    if not entries:
        return None if os.access(path, os.W_OK | os.X_OK) else "is not writable"
    own = read_marker(path)
    same_server = (
        own is not None
        and own["cluster_id"] == marker["cluster_id"]
        and own["server_id"] == marker["server_id"]
    )
    if same_server:
        return None  # claimed by an earlier run of the same step: idempotent
    return f"exists and is not empty ({', '.join(entries[:5])})"


def claim_dirs(request: ClaimDirsRequest) -> ClaimDirsAnswer:
    marker = request["marker"]
    paths = [os.path.normpath(path) for path in request["paths"]]
    refusals = {path: _claim_refusal(path, marker) for path in paths}
    refused = {path: why for path, why in refusals.items() if why is not None}
    if refused:
        return {"claimed": [], "refused": refused}
    for path in paths:
        os.makedirs(path, mode=0o755, exist_ok=True)
        if read_marker(path) is None:
            temporary = os.path.join(path, OWNER_MARKER + ".tmp")
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(marker, handle)
            os.replace(temporary, os.path.join(path, OWNER_MARKER))
    return {"claimed": paths, "refused": {}}


def owners(request: PathsRequest) -> OwnersAnswer:
    return {
        "markers": {path: read_marker(path) for path in request["paths"]},
        "exists": {path: os.path.lexists(path) for path in request["paths"]},
    }


def remove_claimed(request: RemoveClaimedRequest) -> DirsChangedAnswer:
    changed, skipped = [], {}
    for path in request["paths"]:
        marker = read_marker(path)
        if not os.path.lexists(path):
            skipped[path] = "missing"
        elif marker is None or marker["task_id"] != request["task_id"]:
            skipped[path] = "not made by this task"
        else:
            shutil.rmtree(path)
            changed.append(path)
    return {"changed": changed, "skipped": skipped}


def move_aside(request: MoveAsideRequest) -> DirsChangedAnswer:
    changed, skipped = [], {}
    for path in request["paths"]:
        aside = path + request["suffix"]
        marker = read_marker(path)
        if not os.path.lexists(path):
            skipped[path] = "already moved" if os.path.lexists(aside) else "missing"
        elif marker is None or marker["cluster_id"] != request["cluster_id"]:
            skipped[path] = "its marker names another owner"
        elif os.path.lexists(aside):
            skipped[path] = f"{aside} exists"
        else:
            os.rename(path, aside)
            changed.append(path)
        if request["purge"] and os.path.isdir(aside) and not os.path.islink(aside):
            shutil.rmtree(aside)
    return {"changed": changed, "skipped": skipped}


def move_back(request: MoveBackRequest) -> DirsChangedAnswer:
    changed, skipped = [], {}
    for path in request["paths"]:
        aside = path + request["suffix"]
        if not os.path.lexists(aside):
            skipped[path] = f"{aside} is missing"
        elif os.path.lexists(path):
            skipped[path] = "the path is taken again"
        else:
            os.rename(aside, path)
            changed.append(path)
    return {"changed": changed, "skipped": skipped}


def file_sha1(request: PathsRequest) -> FileSha1Answer:
    digests: dict[str, str | None] = {}
    for path in request["paths"]:
        try:
            digest = hashlib.sha1()  # noqa: S324 - an integrity check, not security
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            digests[path] = digest.hexdigest()
        except OSError:
            digests[path] = None
    return {"sha1": digests}


# --------------------------------------------------------------------------- serving

# Requests arrive as parsed JSON: each action reads its own request's keys.
ACTIONS: dict[ActionName, Callable[[Any], object]] = {
    "inspect": inspect,
    "launch": launch,
    "signal": send_signal,
    "wait_ready": wait_ready,
    "locate": locate,
    "tail": tail,
    "survey": survey,
    "claim_dirs": claim_dirs,
    "owners": owners,
    "remove_claimed": remove_claimed,
    "move_aside": move_aside,
    "move_back": move_back,
    "file_sha1": file_sha1,
}

#: What obpilot runs on a host to start the agent: it reads this text's size, then the
#: text, from stdin and runs it as the module `obpilot_agent`, handing it its own text.
BOOTSTRAP = (
    "import sys;n=int(sys.stdin.buffer.readline());s=sys.stdin.buffer.read(n);"
    "exec(compile(s,'obpilot-agent','exec'),{'__name__':'obpilot_agent','AGENT_SOURCE':s})"
)


def agent_version(source: bytes) -> str:
    """An agent's version: the hash of its text."""
    return hashlib.sha256(source).hexdigest()[:16]


class Channel:
    """The agent's stdout: one JSON message per line, written whole by one thread at a
    time. When obpilot has gone (a broken pipe) the agent exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def send(self, message: AgentHello | AgentReply | AgentEvent) -> None:
        line = (json.dumps(message) + "\n").encode()
        with self._lock:
            try:
                sys.stdout.buffer.write(line)
                sys.stdout.buffer.flush()
            except (BrokenPipeError, ValueError):
                os._exit(0)


class ExitWatcher:
    """Watches the server processes the agent has identified and reports each exit as an
    event the moment it happens: one thread polls their pidfds (or, without pidfds,
    looks at /proc every `PROC_POLL` seconds)."""

    PROC_POLL = 0.2

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self.method: Literal["pidfd", "proc"] = "pidfd" if _pidfds_work() else "proc"
        self._lock = threading.Lock()
        #: pid -> (start ticks, home, pidfd or None)
        self._watched: dict[int, tuple[int, str, int | None]] = {}
        self._wake_read, self._wake_write = os.pipe()
        threading.Thread(target=self._run, name="exit-watcher", daemon=True).start()

    def watch_identified(self, report: InspectReport, home: str) -> None:
        for process in report["processes"]:
            if not process["problems"]:
                self.watch(process["pid"], process["start_ticks"], home)

    def watch(self, pid: int, start_ticks: int, home: str) -> None:
        with self._lock:
            known = self._watched.get(pid)
            if known is not None and known[0] == start_ticks:
                return
            descriptor = _pidfd(pid, start_ticks) if self.method == "pidfd" else None
            if self.method == "pidfd" and descriptor is None:
                exited = True  # it went between the look and now
            else:
                exited = False
                if known is not None and known[2] is not None:
                    os.close(known[2])
                self._watched[pid] = (start_ticks, home, descriptor)
        if exited:
            self._report(pid, start_ticks, home)
        else:
            os.write(self._wake_write, b".")

    def _run(self) -> None:
        while True:
            with self._lock:
                watched = dict(self._watched)
            if self.method == "pidfd":
                poller = select.poll()
                poller.register(self._wake_read, select.POLLIN)
                by_descriptor = {}
                for pid, (_, _, descriptor) in watched.items():
                    if descriptor is not None:
                        poller.register(descriptor, select.POLLIN)
                        by_descriptor[descriptor] = pid
                ready = [descriptor for descriptor, _ in poller.poll()]
                if self._wake_read in ready:
                    os.read(self._wake_read, 4096)
                exited = [by_descriptor[d] for d in ready if d in by_descriptor]
            else:
                time.sleep(self.PROC_POLL)
                exited = [pid for pid, (ticks, _, _) in watched.items() if _gone(pid, ticks)]
            for pid in exited:
                self._forget_exited(pid, watched[pid])

    def _forget_exited(self, pid: int, entry: tuple[int, str, int | None]) -> None:
        with self._lock:
            if self._watched.get(pid) != entry:
                return  # watched again meanwhile: a newer process with this pid
            del self._watched[pid]
        if entry[2] is not None:
            os.close(entry[2])
        self._report(pid, entry[0], entry[1])

    def _report(self, pid: int, start_ticks: int, home: str) -> None:
        event: AgentEvent = {"event": "exit", "pid": pid, "start_ticks": start_ticks, "home": home}
        self._channel.send(event)


def _pidfds_work() -> bool:
    descriptor = _pidfd(os.getpid(), None)
    if descriptor is None:
        return False
    os.close(descriptor)
    return True


def reports_in(answer: object) -> list[InspectReport]:
    """The inspections inside an answer (an inspect report, or one nested in a launch,
    wait or signal answer)."""
    if not isinstance(answer, dict):
        return []
    if "processes" in answer and "lock_holder" in answer:
        return [answer]  # type: ignore[list-item]
    found: list[InspectReport] = []
    for key in ("report", "ready"):
        found += reports_in(answer.get(key))
    return found


def _serve_one(line: bytes, channel: Channel, watcher: ExitWatcher) -> None:
    reply: AgentReply
    try:
        request = json.loads(line)
        request_id = request.pop("id")
    except (ValueError, KeyError, AttributeError, TypeError):
        return  # not a request of obpilot's: nobody waits for an answer
    try:
        answer = ACTIONS[request.pop("action")](request)
    except Exception as error:  # reported, not raised: obpilot waits for this answer
        reply = {"id": request_id, "error": f"{type(error).__name__}: {error}"}
        channel.send(reply)
        return
    reply = {"id": request_id, "answer": answer}
    channel.send(reply)
    if "home" in request:
        for report in reports_in(answer):
            watcher.watch_identified(report, request["home"])


def serve(source: bytes) -> None:
    """Says hello, then serves requests from stdin until it closes."""
    channel = Channel()
    watcher = ExitWatcher(channel)
    hello: AgentHello = {
        "agent": agent_version(source),
        "pid": os.getpid(),
        "exit_watch": watcher.method,
    }
    channel.send(hello)
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            os._exit(0)  # obpilot has gone: leave no agent behind, whatever still runs
        if line.strip():
            threading.Thread(target=_serve_one, args=(line, channel, watcher), daemon=True).start()


if __name__ == "obpilot_agent":
    serve(globals()["AGENT_SOURCE"])
