"""The agent's building blocks, run in-process against real processes, locks, sockets and
a real seekdb (the session's metadb server); and the agent as obpilot ships it, started
by its bootstrap in a bare interpreter, answering in the protocol's shape."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from obpilot.hosts import agent
from obpilot.hosts.agent_link import agent_source
from obpilot.hosts.protocol import (
    INSPECT,
    ActionName,
    AgentHello,
    InspectedProcess,
    InspectReport,
    InspectRequest,
    OwnerMarker,
    PidFile,
    PortListener,
    PortListeners,
    SqlFailure,
    SurveyAnswer,
    SurveyedPath,
    SurveyedPort,
)
from tests.support.databases import SeekdbServer, free_port


def test_process_info_reads_binary_directory_and_start_time() -> None:
    info = agent.process_info(os.getpid())
    assert info is not None
    assert os.path.realpath(str(info["exe"])) == os.path.realpath(sys.executable)
    assert info["cwd"] == os.getcwd()
    assert info["start_ticks"] > 0
    assert agent.process_info(2**22 + 12345) is None


def test_an_exited_unreaped_child_counts_as_gone() -> None:
    child = subprocess.Popen(["true"])
    try:
        for _ in range(500):
            if agent.process_info(child.pid) is None:
                break
            time.sleep(0.01)
        assert agent.process_info(child.pid) is None  # a zombie until waited for
    finally:
        child.wait()


def test_lock_holder_names_the_locking_process_without_taking_the_lock(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    pid_file.write_text("0")
    assert agent.lock_holder(str(pid_file)) is None
    assert agent.lock_holder(str(tmp_path / "missing.pid")) is None
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, sys, time
                fd = os.open({str(pid_file)!r}, os.O_RDWR)
                fcntl.lockf(fd, fcntl.LOCK_EX)
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        assert agent.lock_holder(str(pid_file)) == holder.pid
        assert agent.lock_holder(str(pid_file)) == holder.pid  # asking did not take it
    finally:
        holder.kill()
        holder.wait()
    assert agent.lock_holder(str(pid_file)) is None


def test_port_listeners_and_their_owner() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert agent.port_listeners(port)["listening"] is False  # bound, not listening
        listener.listen()
        found = agent.port_listeners(port)
        assert found["listening"] is True
        assert os.getpid() in [owner["pid"] for owner in found["owners"]]
        assert port in agent.listen_ports(os.getpid())
        likely = agent.port_listeners(port, likely=[os.getpid()])
        assert [owner["pid"] for owner in likely["owners"]] == [os.getpid()]
    assert agent.port_listeners(port)["listening"] is False


def test_survey_tells_the_host_and_what_it_offers_at_paths_and_ports(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    for index in range(7):
        (tmp_path / "full" / f"entry{index}").write_text("")
    (tmp_path / "file").write_text("")
    missing = tmp_path / "missing" / "deeper"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        answer = agent.survey(
            {
                "paths": [str(tmp_path / "full"), str(tmp_path / "file"), str(missing)],
                "ports": [port, free_port()],
            }
        )
    assert set(answer) == SurveyAnswer.__required_keys__
    assert answer["python"] == ".".join(map(str, sys.version_info[:3]))
    assert answer["proc"] is True
    assert answer["timeout"] == shutil.which("timeout")
    assert answer["operating_system"].startswith(f"{os.uname().sysname} {os.uname().release}")
    assert answer["architecture"] == os.uname().machine
    assert 0 < answer["memory_available"] <= answer["memory_total"]
    paths = (tmp_path / "full", tmp_path / "file", missing)
    full, file, absent = (answer["paths"][str(path)] for path in paths)
    for surveyed in (full, file, absent):
        assert set(surveyed) == SurveyedPath.__required_keys__
        assert surveyed["device"] == os.stat(tmp_path).st_dev
        assert surveyed["free_bytes"] > 0
    assert (full["exists"], full["is_dir"], len(full["entries"])) == (True, True, 5)
    assert (file["exists"], file["is_dir"], file["entries"]) == (True, False, [])
    assert (absent["exists"], absent["writable"]) == (False, True)  # it could be created
    listened, free = answer["ports"].values()
    assert set(listened) == SurveyedPort.__required_keys__
    assert listened["listening"] is True
    assert listened["pid"] == os.getpid()
    assert listened["command"] is not None
    assert free == {"listening": False, "pid": None, "command": None}


def test_survey_sees_that_a_path_under_a_file_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    surveyed = agent.survey_path(str(tmp_path / "file" / "below"))
    assert (surveyed["exists"], surveyed["writable"]) == (False, False)
    with pytest.raises(ValueError, match="not an absolute path"):
        agent.survey_path("relative/path")


def test_the_kernel_s_socket_list_matches_the_proc_tables() -> None:
    """sock_diag (fast) and /proc/net/tcp* (the fallback) name the same listeners, IPv4 and
    IPv6 alike."""
    with socket.socket() as four, socket.socket(socket.AF_INET6) as six:
        four.bind(("127.0.0.1", 0))
        four.listen()
        six.bind(("::1", 0))
        six.listen()
        from_kernel = agent._listening_sockets_netlink()
        assert from_kernel == agent._listening_sockets_proc()
        assert {four.getsockname()[1], six.getsockname()[1]} <= set(from_kernel.values())


def test_a_script_binary_is_recognised_through_its_interpreter(tmp_path: Path) -> None:
    script = tmp_path / "server"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(0o755)
    other = tmp_path / "other"
    other.write_text(script.read_text())
    process = subprocess.Popen([str(script)])
    try:
        for _ in range(500):
            info = agent.process_info(process.pid)
            if info and len(info.get("argv") or []) >= 2:
                break
            time.sleep(0.01)
        assert info is not None
        assert agent.runs_binary(info, [str(script)])
        assert not agent.runs_binary(info, [str(other)])
        assert not agent.runs_binary(info, ["/usr/bin/true"])
    finally:
        process.kill()
        process.wait()


def test_native_password_scramble_matches_the_protocol() -> None:
    salt = bytes(range(1, 21))
    sha1 = hashlib.sha1  # the protocol's own hash
    stage1 = sha1(b"secret").digest()
    mix = sha1(salt + sha1(stage1).digest()).digest()
    expected = bytes(a ^ b for a, b in zip(stage1, mix, strict=True))
    assert agent.native_password_scramble(b"secret", salt) == expected
    assert agent.native_password_scramble(b"", salt) == b""


def test_mysql_login_and_queries_against_seekdb(seekdb_server: SeekdbServer) -> None:
    answer = agent.sql_check(
        {
            "port": seekdb_server.port,
            "queries": ["SELECT 1", "SELECT version()", "SELECT NULL, 'a'"],
        }
    )
    assert answer["ok"], answer
    assert answer["results"][0] == [["1"]]
    assert "seekdb" in str(answer["results"][1][0][0])
    assert answer["results"][2] == [[None, "a"]]


def test_mysql_errors_are_reported_not_raised(seekdb_server: SeekdbServer) -> None:
    bad_query = agent.sql_check({"port": seekdb_server.port, "queries": ["SELEKT 1"]})
    assert not bad_query["ok"]
    assert "1064" in bad_query["error"]
    bad_user = agent.sql_check(
        {"port": seekdb_server.port, "user": "nobody", "password": "x", "queries": ["SELECT 1"]}
    )
    assert not bad_user["ok"]
    assert "1045" in bad_user["error"]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = agent.sql_check({"port": port, "queries": ["SELECT 1"]})
    assert not refused["ok"]
    assert "ConnectionRefusedError" in refused["error"]


@pytest.mark.parametrize("action", ["locate", "tail", "survey"])
def test_unknown_fields_do_not_break_actions(action: ActionName, tmp_path: Path) -> None:
    request = {"action": action, "path": str(tmp_path / "none"), "extra": 1}
    assert isinstance(agent.ACTIONS[action](request), dict)


def python_37() -> str | None:
    """A Python 3.7, the oldest a host may have, if this machine has one."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = [shutil.which("python3.7"), *glob.glob(f"{pyenv}/versions/3.7*/bin/python3.7")]
    for candidate in filter(None, found):
        if subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@pytest.mark.parametrize("version", ["this", "3.7"])
def test_the_shipped_agent_needs_nothing_but_the_standard_library(
    version: str, tmp_path: Path
) -> None:
    """No obpilot and no site-packages (-I -S), on this Python and on the oldest a host
    may have: the answer has the protocol's keys, down to the process it identified."""
    python = sys.executable if version == "this" else python_37()
    if python is None:
        pytest.skip("no Python 3.7 on this machine")
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(str(os.getpid()))
    with pid_file.open("r+") as locked, socket.socket() as listener:
        fcntl.lockf(locked, fcntl.LOCK_EX)
        port = free_port()
        listener.bind(("127.0.0.1", port))
        listener.listen()  # never accepts: the SQL login times out
        request: InspectRequest = {
            "pid_file": str(pid_file),
            "home": os.getcwd(),
            "binaries": [sys.executable],
            "port": port,
            "other_ports": [free_port()],
            "sql": {"port": port, "queries": ["SELECT 1"], "timeout": 0.5},
        }
        source = agent_source()
        message = json.dumps({"id": 7, "action": INSPECT.name, **request})
        shipped = subprocess.Popen(
            [python, "-I", "-S", "-c", agent.BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert shipped.stdin is not None
        assert shipped.stdout is not None
        shipped.stdin.write(f"{len(source)}\n".encode() + source + message.encode() + b"\n")
        shipped.stdin.flush()
        hello, reply = json.loads(shipped.stdout.readline()), json.loads(shipped.stdout.readline())
        shipped.stdin.close()  # the agent exits when its stdin closes
        assert shipped.wait(timeout=10) == 0
    assert set(hello) == AgentHello.__required_keys__
    assert hello["agent"] == agent.agent_version(source)
    assert reply["id"] == 7
    report = reply["answer"]
    assert set(report) == InspectReport.__required_keys__ | {"sql"}
    assert set(report["pid_file"]) <= PidFile.__required_keys__ | PidFile.__optional_keys__
    [process] = report["processes"]
    assert set(process) == InspectedProcess.__required_keys__
    assert (process["pid"], process["problems"]) == (os.getpid(), [])
    assert set(report["port"]) == PortListeners.__required_keys__
    assert set(report["port"]["owners"][0]) == PortListener.__required_keys__
    assert set(report["sql"]) == SqlFailure.__required_keys__


MARKER: OwnerMarker = {"cluster_id": 3, "cluster": "c3", "server_id": 7, "task_id": 11}


def test_claim_dirs_makes_marked_directories_or_refuses_them_all(tmp_path: Path) -> None:
    home, data = str(tmp_path / "a" / "home"), str(tmp_path / "data")
    claimed = agent.claim_dirs({"paths": [home, data], "marker": MARKER})
    assert (claimed["claimed"], claimed["refused"]) == ([home, data], {})
    assert agent.read_marker(home) == MARKER
    # An earlier run of the same server's step: claimed again, nothing changed.
    again = agent.claim_dirs({"paths": [home], "marker": {**MARKER, "task_id": 12}})
    assert again["claimed"] == [home]
    assert agent.read_marker(home) == MARKER

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "data.db").write_text("someone's")
    fresh = str(tmp_path / "fresh")
    refused = agent.claim_dirs({"paths": [fresh, str(taken)], "marker": MARKER})
    assert refused["claimed"] == []
    assert refused["refused"] == {str(taken): "exists and is not empty (data.db)"}
    assert not os.path.exists(fresh)  # nothing created when one is refused
    other_server = agent.claim_dirs({"paths": [home], "marker": {**MARKER, "server_id": 8}})
    assert "not empty (.obpilot-owner)" in other_server["refused"][home]


def test_remove_claimed_removes_only_what_the_task_made(tmp_path: Path) -> None:
    mine, theirs, bare = (str(tmp_path / name) for name in ("mine", "theirs", "bare"))
    agent.claim_dirs({"paths": [mine], "marker": MARKER})
    agent.claim_dirs({"paths": [theirs], "marker": {**MARKER, "task_id": 99}})
    os.mkdir(bare)
    answer = agent.remove_claimed({"paths": [mine, theirs, bare], "task_id": 11})
    assert answer["changed"] == [mine]
    assert answer["skipped"] == {theirs: "not made by this task", bare: "not made by this task"}
    assert not os.path.exists(mine)
    assert os.path.isdir(theirs)
    assert os.path.isdir(bare)


def test_move_aside_and_back_only_for_the_marked_cluster(tmp_path: Path) -> None:
    mine, other = str(tmp_path / "mine"), str(tmp_path / "other")
    agent.claim_dirs({"paths": [mine], "marker": MARKER})
    agent.claim_dirs({"paths": [other], "marker": {**MARKER, "cluster_id": 4}})
    request = {"paths": [mine, other], "cluster_id": 3, "suffix": ".deleted-5", "purge": False}
    moved = agent.move_aside(request)  # type: ignore[arg-type]
    assert moved == {"changed": [mine], "skipped": {other: "its marker names another owner"}}
    assert os.path.isdir(mine + ".deleted-5")
    assert agent.move_aside(request)["skipped"][mine] == "already moved"  # type: ignore[arg-type]
    back = agent.move_back({"paths": [mine], "suffix": ".deleted-5"})
    assert back == {"changed": [mine], "skipped": {}}
    purged = agent.move_aside({**request, "paths": [mine], "purge": True})  # type: ignore[typeddict-item]
    assert purged["changed"] == [mine]
    assert not os.path.exists(mine)
    assert not os.path.exists(mine + ".deleted-5")


def test_file_sha1(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"obpilot" * 300_000)
    missing = str(tmp_path / "none")
    answer = agent.file_sha1({"paths": [str(path), missing]})
    assert answer["sha1"] == {
        str(path): hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest(),
        missing: None,
    }
