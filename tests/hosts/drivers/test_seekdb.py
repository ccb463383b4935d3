"""The seekdb driver: its parameter checks and start command (nothing runs), its own
branches on a fake host (binary lookup, launch failures), and real seekdb processes on
this machine and over SSH. For the real ones, one base dir per host kind is started
twice (first start and one restart) and shared by the tests in file order; each test
brings it to the state it needs through the driver itself."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from obpilot.errors import InvalidServerParameter, ServerProcessError
from obpilot.hosts.drivers import (
    Cause,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    ProcessTimeouts,
    SeekdbDriver,
    driver_for,
)
from obpilot.hosts.drivers.seekdb import check_parameters, effective_parameters
from obpilot.hosts.executor import HostExecutor, discard_log
from tests.hosts.processes import alive
from tests.support.databases import free_port, seekdb_binary
from tests.support.fake_host import FakeHost, Launch, Startup

# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("datafile_size", "0", "disk percentage"),
        ("memory_budget", "512M", "below its minimum of 1024M"),
        ("memory_budget", "0", "give a size with a unit"),
        ("log_disk_size", "1536M", "below its minimum of 2048M"),
        ("log_disk_size", "2X", "give a size with a unit"),
        ("datafile_size", "2M", "below its minimum of 4M"),
        ("datafile_maxsize", "1024", "give a size with a unit"),
        ("memory_limit", "4G", "deprecated"),
        ("system_memory", "1G", "does not exist in seekdb"),
        ("cpu_count", "two", "a number"),
        ("Memory Budget", "1G", "name"),
        ("syslog_level", "WARN INFO", "no spaces"),
    ],
)
async def test_a_bad_parameter_is_refused_before_the_host_is_contacted(
    name: str, value: str, reason: str
) -> None:
    host = FakeHost()
    spec = ProcessSpec(
        kind="seekdb", sql_port=2881, home_path="/data/seekdb", parameters={name: value}
    )
    with pytest.raises(InvalidServerParameter, match=reason):
        await SeekdbDriver(spec, host).start()
    assert not host.contacted


def test_defaults_suit_a_small_machine_and_can_be_overridden() -> None:
    assert effective_parameters({}) == {
        "memory_budget": "1G",
        "log_disk_size": "2G",
        "datafile_size": "64M",
        "datafile_maxsize": "2G",
    }
    assert effective_parameters({"memory_budget": "2G"})["memory_budget"] == "2G"


def test_good_values_pass_and_unknown_names_only_warn() -> None:
    assert check_parameters(effective_parameters({"cpu_count": "2", "memory_budget": "1.5G"})) == []
    warnings = check_parameters({"memory_bugdet": "2G"})
    assert len(warnings) == 1
    assert "memory_bugdet" in warnings[0]


def test_datafile_maxsize_not_below_datafile_size() -> None:
    with pytest.raises(InvalidServerParameter, match="datafile_maxsize"):
        check_parameters({"datafile_size": "1G", "datafile_maxsize": "512M"})


def test_the_start_command_of_a_new_and_of_an_initialised_base_dir() -> None:
    spec = ProcessSpec(
        kind="seekdb", sql_port=2881, home_path="/data/seekdb", parameters={"cpu_count": "2"}
    )
    driver = SeekdbDriver(spec, FakeHost())
    new = ProcessStatus(state=ProcessState.STOPPED, home="/data/seekdb", sql_port=2881)
    argv, env, cwd = driver.launch_command("/opt/seekdb", new)
    assert argv == [
        "/opt/seekdb",
        "--port",
        "2881",
        "--base-dir",
        "/data/seekdb",
        "--parameter",
        "cpu_count=2",
        "--parameter",
        "datafile_maxsize=2G",
        "--parameter",
        "datafile_size=64M",
        "--parameter",
        "log_disk_size=2G",
        "--parameter",
        "memory_budget=1G",
        "--log-level",
        "WARN",
        "--variable",
        "time_zone=+00:00",
    ]
    assert env == {"TELEMETRY_ENABLED": "false"}
    assert cwd == "/data/seekdb"
    initialised = ProcessStatus(
        state=ProcessState.STOPPED, home="/data/seekdb", sql_port=2881, initialised=True
    )
    assert "--variable" not in driver.launch_command("/opt/seekdb", initialised)[0]


def test_a_relative_home_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        SeekdbDriver(ProcessSpec(kind="seekdb", sql_port=2881, home_path="data/seekdb"), FakeHost())


# --------------------------------------------------------------------------- on a fake host

BASE_DIR = "/data/seekdb"
PYLIBSEEKDB = "/usr/lib/python3/dist-packages/pylibseekdb/seekdb"
TIMEOUTS = ProcessTimeouts(start=5, stop_grace=2, kill=0.3, probe=1, sql=1)


def fake_host(*, pylibseekdb: str | None = PYLIBSEEKDB) -> FakeHost:
    host = FakeHost(pylibseekdb=pylibseekdb)
    host.install(PYLIBSEEKDB, "seekdb (OceanBase seekdb) 1.0.0\nREVISION: fake\n")
    # What seekdb does when it starts: run/seekdb names the binary it runs.
    host.link(f"{BASE_DIR}/run/seekdb", PYLIBSEEKDB)
    return host


def seekdb_on(host: FakeHost) -> SeekdbDriver:
    spec = ProcessSpec(kind="seekdb", sql_port=2881, home_path=BASE_DIR)
    return SeekdbDriver(spec, host, TIMEOUTS)


async def test_the_binary_comes_from_pylibseekdb_and_is_checked_once_per_host() -> None:
    host = fake_host()
    lines: list[str] = []
    started = await seekdb_on(host).start(log=lines.append)
    assert started.state == ProcessState.RUNNING
    assert any(
        f"seekdb binary from pylibseekdb of /usr/bin/python3: {PYLIBSEEKDB}" in line
        for line in lines
    )
    [launch] = host.launches
    assert launch["argv"][0] == PYLIBSEEKDB
    assert launch["env"] == {"TELEMETRY_ENABLED": "false"}

    again = seekdb_on(host)  # as the next subtask would
    assert (await again.stop()).state == ProcessState.STOPPED
    await again.start()
    assert host.probes.count("locate") == 1
    assert host.commands == []  # a binary is checked only when a launch fails


async def test_without_pylibseekdb_there_is_no_binary() -> None:
    with pytest.raises(ServerProcessError) as caught:
        await seekdb_on(fake_host(pylibseekdb=None)).start()
    assert caught.value.cause == Cause.BINARY_NOT_FOUND
    assert "pylibseekdb is not installed for /usr/bin/python3" in caught.value.message


async def test_a_binary_that_cannot_load_is_not_found() -> None:
    host = fake_host()
    host.install(PYLIBSEEKDB, "libaio.so.1: cannot open shared object file", exit_status=127)
    with pytest.raises(ServerProcessError) as caught:
        await seekdb_on(host).start()
    assert caught.value.cause == Cause.BINARY_NOT_FOUND
    assert "cannot run (exit status 127): libaio.so.1: cannot open" in caught.value.message
    assert len(host.launches) == 1
    assert host.commands == [[PYLIBSEEKDB, "--version"]]  # asked why, once it failed


async def test_exit_96_means_another_seekdb_holds_the_base_dir() -> None:
    host = fake_host()
    host.launch_next(Launch(exit_status=96, output="seekdb: pid file is locked\n"))
    with pytest.raises(ServerProcessError, match="exit 96: seekdb: pid file is locked") as caught:
        await seekdb_on(host).start()
    assert caught.value.cause == Cause.BASE_DIR_IN_USE


@pytest.mark.parametrize(
    "launch", [Launch(exit_status=1), Launch(startup=Startup.CRASHES)], ids=["launch", "startup"]
)
async def test_an_exit_with_an_empty_log_is_a_refused_parameter(launch: Launch) -> None:
    host = fake_host()
    host.launch_next(launch)
    with pytest.raises(ServerProcessError) as caught:
        await seekdb_on(host).start()
    assert caught.value.cause == Cause.BAD_PARAMETER
    assert "when it refuses a --parameter value (datafile_maxsize=2G" in caught.value.message


async def test_an_exit_with_a_log_points_to_the_dropped_cause() -> None:
    host = fake_host()
    host.write(f"{BASE_DIR}/log/seekdb.log", "[WARN] bootstrap failed\n")
    host.launch_next(Launch(exit_status=1))
    with pytest.raises(ServerProcessError) as caught:
        await seekdb_on(host).start()
    assert caught.value.cause == Cause.START_FAILED
    assert "log/seekdb.log: [WARN] bootstrap failed" in caught.value.message
    assert "runs with --log-level WARN, which drops the cause" in caught.value.message


async def test_a_stop_with_freeze_freezes_the_whole_server() -> None:
    host = fake_host()
    server = host.run_server(
        BASE_DIR, PYLIBSEEKDB, pid_file=f"{BASE_DIR}/run/seekdb.pid", ports=[2881]
    )
    await seekdb_on(host).stop(freeze=True)
    assert server.statements == ["ALTER SYSTEM MINOR FREEZE"]


# --------------------------------------------------------------------------- real seekdb

IGNORE_USR1 = str(Path(__file__).resolve().parents[2] / "support" / "ignore_usr1.py")


@dataclass
class Seekdb:
    driver: SeekdbDriver
    executor: HostExecutor
    home: Path
    port: int


def _spec(home: Path, port: int, executor: HostExecutor, **extra: object) -> ProcessSpec:
    # Locally the binary is found through pylibseekdb (obpilot's own Python has it); the
    # SSH session's python3 may not have it, so there the path is given, as a user would.
    binary = None if executor.label == "local" else str(seekdb_binary())
    return ProcessSpec(
        kind="seekdb",
        sql_port=port,
        home_path=str(home),
        binary_path=binary,
        **extra,  # type: ignore[arg-type]
    )


def _spawn(argv: list[str], **options: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, **options)  # type: ignore[call-overload,no-any-return]


def _proc(pid: int, name: str) -> list[str]:
    """/proc/PID/cmdline or environ, split."""
    return Path(f"/proc/{pid}/{name}").read_bytes().decode().split("\0")


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
async def seekdb(
    executor: HostExecutor, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Seekdb]:
    home = tmp_path_factory.mktemp(f"seekdb-{executor.label.split('@')[0]}") / "base"
    port = free_port()
    driver = driver_for(_spec(home, port, executor), executor)
    assert isinstance(driver, SeekdbDriver)
    yield Seekdb(driver, executor, home, port)
    # Whatever a failed test left running is killed by its pid (after identification).
    status = await driver.status()
    if status.pid is not None and status.state != ProcessState.CONFLICT:
        await driver.stop(force=True)


async def test_a_stale_pid_file_of_another_program_is_left_alone(seekdb: Seekdb) -> None:
    sleeper = _spawn(["sleep", "300"])
    try:
        (seekdb.home / "run").mkdir(parents=True)
        (seekdb.home / "run" / "seekdb.pid").write_text(str(sleeper.pid))
        lines: list[str] = []
        status = await seekdb.driver.status(log=lines.append)
        assert status.state == ProcessState.STOPPED
        assert any(f"pid {sleeper.pid} now belongs to another program" in n for n in status.notes)
        stopped = await seekdb.driver.stop(log=lines.append)
        assert stopped.state == ProcessState.STOPPED
        assert any("already stopped" in line for line in lines)
        assert not any("SIG" in line for line in lines)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_start_launches_seekdb_and_waits_until_it_answers_sql(seekdb: Seekdb) -> None:
    lines: list[str] = []
    status = await seekdb.driver.start(log=lines.append)
    assert status.state == ProcessState.RUNNING
    assert status.pid is not None
    assert alive(status.pid)
    assert "seekdb" in (status.version or "")
    connection = pymysql.connect(host="127.0.0.1", port=seekdb.port, user="root", password="")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1, @@time_zone")
            assert cursor.fetchone() == (1, "+00:00")
    finally:
        connection.close()
    assert "TELEMETRY_ENABLED=false" in _proc(status.pid, "environ")
    argv = _proc(status.pid, "cmdline")
    for expected in (
        "memory_budget=1G",
        "log_disk_size=2G",
        "datafile_size=64M",
        "datafile_maxsize=2G",
        "time_zone=+00:00",
    ):
        assert expected in argv
    assert argv[argv.index("--log-level") + 1] == "WARN"
    assert "--nodaemon" not in argv
    assert (seekdb.home / "run" / "seekdb.pid").read_text().strip() == str(status.pid)
    assert any("launching" in line for line in lines)
    assert any("answers SQL" in line for line in lines)


async def test_start_when_running_is_success_and_changes_nothing(seekdb: Seekdb) -> None:
    before = await seekdb.driver.start()
    lines: list[str] = []
    after = await seekdb.driver.start(log=lines.append)
    assert after.state == ProcessState.RUNNING
    assert (after.pid, after.start_ticks) == (before.pid, before.start_ticks)
    assert any("already running" in line for line in lines)
    assert not any("launching" in line for line in lines)


async def test_status_identifies_the_process(seekdb: Seekdb) -> None:
    await seekdb.driver.start()  # already running when the file runs in order
    status = await seekdb.driver.status()
    assert status.state == ProcessState.RUNNING
    assert status.binary is not None
    assert _same_file(status.binary, str(seekdb_binary()))
    assert seekdb.port in status.listen_ports
    assert status.pid in [owner.pid for owner in status.port_owners]
    assert status.initialised


async def test_start_on_a_busy_port_fails_and_names_the_holder(
    seekdb: Seekdb, tmp_path: Path
) -> None:
    running = await seekdb.driver.start()
    other_home = tmp_path / "other"
    other = driver_for(_spec(other_home, seekdb.port, seekdb.executor), seekdb.executor)
    with pytest.raises(ServerProcessError) as caught:
        await other.start()
    assert caught.value.cause == Cause.PORT_BUSY
    assert f"port {seekdb.port} is in use by pid {running.pid}" in caught.value.message
    assert not other_home.exists()  # refused before anything was launched


async def test_a_base_dir_in_use_is_refused_and_its_process_not_signalled(
    seekdb: Seekdb,
) -> None:
    running = await seekdb.driver.start()
    same_dir = driver_for(_spec(seekdb.home, free_port(), seekdb.executor), seekdb.executor)
    status = await same_dir.status()
    assert status.state == ProcessState.CONFLICT
    with pytest.raises(ServerProcessError) as caught:
        await same_dir.start()
    assert caught.value.cause == Cause.BASE_DIR_IN_USE
    assert f"in use by pid {running.pid}" in caught.value.message
    with pytest.raises(ServerProcessError) as refused:
        await same_dir.stop(force=True)
    assert refused.value.cause == Cause.NOT_OURS
    # Past obpilot's own check (as in a race), seekdb itself refuses with exit 96.
    assert isinstance(same_dir, SeekdbDriver)
    stopped = ProcessStatus(
        state=ProcessState.STOPPED, home=str(seekdb.home), sql_port=0, initialised=True
    )
    with pytest.raises(ServerProcessError) as exit_96:
        await same_dir._launch(stopped, time.monotonic() + 60, discard_log)
    assert exit_96.value.cause == Cause.BASE_DIR_IN_USE
    assert "exit 96" in exit_96.value.message
    assert (await seekdb.driver.status()).pid == running.pid


async def test_stop_is_clean_and_verified(seekdb: Seekdb) -> None:
    running = await seekdb.driver.start()
    assert running.pid is not None
    lines: list[str] = []
    stopped = await seekdb.driver.stop(log=lines.append, freeze=True)
    assert stopped.state == ProcessState.STOPPED
    assert any("ALTER SYSTEM MINOR FREEZE" in line for line in lines)
    assert not any("minor freeze failed" in line for line in lines)
    assert any("SIGUSR1" in line for line in lines)
    assert not any("SIGKILL" in line for line in lines)
    assert not alive(running.pid)
    assert not _port_open(seekdb.port)
    # seekdb removes its socket only on the clean (SIGUSR1) path.
    assert not (seekdb.home / "run" / "sql.sock").exists()


async def test_stop_when_stopped_is_success(seekdb: Seekdb) -> None:
    lines: list[str] = []
    status = await seekdb.driver.stop(log=lines.append)
    assert status.state == ProcessState.STOPPED
    assert any("already stopped" in line for line in lines)
    assert not any("SIG" in line for line in lines)


async def test_restart_then_force_stop_kills_at_once(seekdb: Seekdb) -> None:
    started = await seekdb.driver.start()
    assert started.state == ProcessState.RUNNING
    assert started.pid is not None
    argv = _proc(started.pid, "cmdline")
    assert "--variable" not in argv  # time_zone only on a base dir's first start
    lines: list[str] = []
    stopped = await seekdb.driver.stop(log=lines.append, force=True)
    assert stopped.state == ProcessState.STOPPED
    assert any("SIGKILL" in line for line in lines)
    assert not any("SIGUSR1" in line for line in lines)
    assert not alive(started.pid)
    assert not _port_open(seekdb.port)


async def test_a_process_ignoring_the_clean_stop_is_killed_after_the_grace_period(
    executor: HostExecutor, tmp_path: Path
) -> None:
    home, port = tmp_path / "stubborn", free_port()
    stubborn = _spawn([sys.executable, IGNORE_USR1, str(home), str(port)], stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None
        assert stubborn.stdout.readline() == b"ready\n"
        spec = ProcessSpec(
            kind="seekdb", sql_port=port, home_path=str(home), binary_path=IGNORE_USR1
        )
        driver = SeekdbDriver(spec, executor, ProcessTimeouts(stop_grace=30, kill=10, sql=1))
        status = await driver.status()
        assert status.state == ProcessState.STARTING  # identified; it speaks no SQL
        assert status.pid == stubborn.pid
        lines: list[str] = []
        stopped = await driver.stop(log=lines.append, grace=1)
        assert stopped.state == ProcessState.STOPPED
        assert any("SIGUSR1" in line for line in lines)
        assert any("still runs after 1 s; sending SIGKILL" in line for line in lines)
        assert stubborn.wait(10) == -9
        assert not _port_open(port)
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
        stubborn.wait()


async def test_a_stranger_holding_the_pid_file_lock_is_never_signalled(
    executor: HostExecutor, tmp_path: Path
) -> None:
    home = tmp_path / "held"
    (home / "run").mkdir(parents=True)
    pid_file = home / "run" / "seekdb.pid"
    stranger = _spawn(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, time
                fd = os.open({str(pid_file)!r}, os.O_RDWR | os.O_CREAT)
                fcntl.lockf(fd, fcntl.LOCK_EX)
                os.write(fd, str(os.getpid()).encode())
                print("locked", flush=True)
                time.sleep(300)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        cwd="/",
    )
    try:
        assert stranger.stdout is not None
        assert stranger.stdout.readline() == b"locked\n"
        driver = driver_for(_spec(home, free_port(), executor), executor)
        status = await driver.status()
        assert status.state == ProcessState.CONFLICT
        assert f"locked by pid {stranger.pid}, which is not this server" in status.notes[0]
        for force in (False, True):
            with pytest.raises(ServerProcessError) as caught:
                await driver.stop(force=force)
            assert caught.value.cause == Cause.NOT_OURS
        with pytest.raises(ServerProcessError) as start:
            await driver.start()
        assert start.value.cause == Cause.BASE_DIR_IN_USE
        await asyncio.sleep(0.2)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


async def test_start_on_a_port_held_by_another_program(
    executor: HostExecutor, tmp_path: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        driver = driver_for(_spec(tmp_path / "base", port, executor), executor)
        with pytest.raises(ServerProcessError) as caught:
            await driver.start()
    assert caught.value.cause == Cause.PORT_BUSY
    assert f"port {port} is in use by pid {os.getpid()}" in caught.value.message


async def test_a_binary_that_cannot_run_is_a_clear_error(
    executor: HostExecutor, tmp_path: Path
) -> None:
    spec = ProcessSpec(
        kind="seekdb",
        sql_port=free_port(),
        home_path=str(tmp_path / "base"),
        binary_path=str(tmp_path / "no-seekdb"),
    )
    with pytest.raises(ServerProcessError) as caught:
        await driver_for(spec, executor).start()
    assert caught.value.cause == Cause.BINARY_NOT_FOUND
    assert "no-seekdb cannot run" in caught.value.message


async def test_a_bad_parameter_is_refused_before_anything_runs(
    executor: HostExecutor, tmp_path: Path
) -> None:
    spec = _spec(tmp_path / "base", free_port(), executor, parameters={"datafile_size": "0"})
    with pytest.raises(InvalidServerParameter, match="datafile_size=0"):
        await driver_for(spec, executor).start()
    assert not (tmp_path / "base").exists()


async def test_a_value_seekdb_refuses_is_reported_as_a_bad_parameter(
    executor: HostExecutor, tmp_path: Path
) -> None:
    # Past obpilot's own check: seekdb's daemon exits 1 with an empty log.
    spec = _spec(tmp_path / "base", free_port(), executor, parameters={"memory_budget": "512M"})
    driver = driver_for(spec, executor)
    assert isinstance(driver, SeekdbDriver)
    with pytest.raises(ServerProcessError) as caught:
        await driver._start_validated(discard_log, 60)
    assert caught.value.cause == Cause.BAD_PARAMETER
    assert "memory_budget=512M" in caught.value.message
    assert (await driver.status()).state == ProcessState.STOPPED
