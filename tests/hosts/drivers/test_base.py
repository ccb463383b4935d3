"""The shared pid-file driver (status, start, stop and the probe transport) on a fake
host: every branch, without a real process. `PlainDriver` is the base driver with only
what a subclass must say; seekdb and observer specifics are tested beside their own
drivers."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from obpilot.errors import HostError, ServerProcessError
from obpilot.hosts.drivers import Cause, ProcessSpec, ProcessState, ProcessStatus, ProcessTimeouts
from obpilot.hosts.drivers.base import PidFileServerDriver
from obpilot.hosts.executor import StepLog
from obpilot.settings import Settings
from tests.support.fake_host import (
    ACCESS_DENIED,
    NOT_SPEAKING_SQL,
    CleanStop,
    FakeHost,
    FakeProcess,
    Launch,
    Startup,
)

HOME = "/srv/plain"
BINARY = "/opt/plain/bin/server"
PID_FILE = f"{HOME}/run/plain.pid"
SERVER_LOG = f"{HOME}/log/plain.log"
SQL_PORT, RPC_PORT = 2881, 2882
PASSWORD = "s3cret"
#: Short bounds: the fake host answers at once, so only the drivers' own loops wait.
TIMEOUTS = ProcessTimeouts(start=5, stop_grace=2, kill=0.3, probe=1, sql=1)


class PlainDriver(PidFileServerDriver):
    kind = "plain"
    pid_file_name = "run/plain.pid"
    server_log_name = "log/plain.log"

    def known_binaries(self) -> list[str]:
        return [BINARY]

    async def resolve_binary(self, log: StepLog) -> str:
        return BINARY

    async def binary_problem(self, binary: str) -> ServerProcessError | None:
        return None

    def launch_command(
        self, binary: str, status: ProcessStatus
    ) -> tuple[list[str], dict[str, str], str]:
        return [binary, "--port", str(self.spec.sql_port)], {"MODE": "test"}, self.home


class FreezingDriver(PlainDriver):
    def freeze_statement(self) -> str | None:
        return "ALTER SYSTEM MINOR FREEZE"


@pytest.fixture
def host() -> FakeHost:
    host = FakeHost()
    host.install(BINARY, "plain server 1.0")
    return host


def plain(
    host: FakeHost, *, rpc_port: int | None = None, driver: type[PlainDriver] = PlainDriver
) -> PlainDriver:
    spec = ProcessSpec(
        kind="plain", sql_port=SQL_PORT, rpc_port=rpc_port, home_path=HOME, sql_password=PASSWORD
    )
    return driver(spec, host, TIMEOUTS)


def serve(
    host: FakeHost,
    *,
    ports: Iterable[int] = (SQL_PORT,),
    password: str = PASSWORD,
    **behaviour: Any,
) -> FakeProcess:
    """The plain server, running (by default: answering SQL on its port)."""
    return host.run_server(
        HOME, BINARY, pid_file=PID_FILE, ports=ports, password=password, **behaviour
    )


def said(lines: list[str], text: str) -> bool:
    return any(text in line for line in lines)


def test_timeouts_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, process_start_timeout=90, process_stop_grace=20, process_kill_timeout=5
    )
    assert ProcessTimeouts.from_settings(settings) == ProcessTimeouts(
        start=90, stop_grace=20, kill=5
    )


# --------------------------------------------------------------------------- probe


async def test_an_error_inside_the_probe_is_reported_as_a_host_error(host: FakeHost) -> None:
    def broken_disk() -> None:
        raise OSError("Input/output error")

    host.before("inspect", broken_disk)
    with pytest.raises(HostError, match="OSError: Input/output error") as caught:
        await plain(host).status()
    assert "status" in caught.value.message


# --------------------------------------------------------------------------- status


class TestStatusOfTheIdentifiedServer:
    async def test_answering_sql_it_is_running(self, host: FakeHost) -> None:
        server = serve(host, version="plain-2.0")
        lines: list[str] = []
        status = await plain(host).status(log=lines.append)
        assert status.state == ProcessState.RUNNING
        assert (status.pid, status.start_ticks, status.binary) == (
            server.pid,
            server.start_ticks,
            BINARY,
        )
        assert status.version == "plain-2.0"
        assert status.listen_ports == (SQL_PORT,)
        assert [owner.pid for owner in status.port_owners] == [server.pid]
        assert status.initialised
        assert status.notes == ()
        assert said(lines, f"RUNNING: pid {server.pid} ({BINARY}) answers SQL on port {SQL_PORT}")

    @pytest.mark.parametrize(
        ("ports", "error"),
        [([], "the SQL port is not open"), ([SQL_PORT], NOT_SPEAKING_SQL)],
        ids=["port closed", "port open"],
    )
    async def test_not_answering_sql_yet_it_is_starting(
        self, host: FakeHost, ports: list[int], error: str
    ) -> None:
        server = serve(host, ports=ports, answers_sql=False)
        status = await plain(host).status()
        assert status.state == ProcessState.STARTING
        assert status.pid == server.pid
        assert status.sql_error == error
        assert status.version is None
        assert status.describe().startswith(f"STARTING: pid {server.pid}")

    async def test_refusing_obpilots_login_it_is_starting_with_the_reason(
        self, host: FakeHost
    ) -> None:
        serve(host, password="another")
        status = await plain(host).status()
        assert status.state == ProcessState.STARTING
        assert status.sql_error == ACCESS_DENIED

    async def test_serving_another_port_it_is_a_conflict(self, host: FakeHost) -> None:
        server = serve(host, ports=[9999])
        status = await plain(host).status()
        assert status.state == ProcessState.CONFLICT
        assert status.pid == server.pid
        assert status.notes == (
            f"{HOME} is in use by pid {server.pid}, which serves port 9999, not {SQL_PORT}",
        )

    async def test_its_own_rpc_port_is_no_conflict(self, host: FakeHost) -> None:
        serve(host, ports=[RPC_PORT], answers_sql=False)
        status = await plain(host, rpc_port=RPC_PORT).status()
        assert status.state == ProcessState.STARTING

    async def test_another_program_on_its_sql_port_is_noted(self, host: FakeHost) -> None:
        serve(host, ports=[RPC_PORT], answers_sql=False)
        squatter = host.spawn("/usr/bin/nc", ports=[SQL_PORT])
        status = await plain(host, rpc_port=RPC_PORT).status()
        assert status.state == ProcessState.STARTING
        assert status.sql_error == NOT_SPEAKING_SQL
        assert status.notes == (f"port {SQL_PORT} is in use by pid {squatter.pid} (/usr/bin/nc)",)


class TestStatusOfAForeignLock:
    async def test_another_program_holding_the_lock_is_a_conflict(self, host: FakeHost) -> None:
        stranger = host.spawn("/usr/bin/python3", lock=PID_FILE)
        status = await plain(host).status()
        assert status.state == ProcessState.CONFLICT
        assert status.pid == stranger.pid
        assert status.notes == (
            f"{PID_FILE} is locked by pid {stranger.pid}, which is not this server "
            f"(pid {stranger.pid} runs /usr/bin/python3, not {BINARY}; "
            f"pid {stranger.pid} works in /, not {HOME})",
        )

    async def test_the_same_binary_in_another_directory_is_a_conflict(self, host: FakeHost) -> None:
        other = host.spawn(BINARY, cwd="/srv/other", lock=PID_FILE)
        status = await plain(host).status()
        assert status.state == ProcessState.CONFLICT
        assert f"pid {other.pid} works in /srv/other, not {HOME}" in status.notes[0]

    async def test_a_holder_in_another_pid_namespace_has_no_pid(self, host: FakeHost) -> None:
        host.spawn(BINARY, cwd=HOME, lock=PID_FILE, elsewhere=True)
        status = await plain(host).status()
        assert status.state == ProcessState.CONFLICT
        assert status.pid is None
        assert status.notes == (f"{PID_FILE} is locked by pid 0, which is not this server",)


class TestStatusWithoutTheServer:
    async def test_nothing_there_is_stopped(self, host: FakeHost) -> None:
        status = await plain(host).status()
        assert status.state == ProcessState.STOPPED
        assert (status.pid, status.port_in_use, status.initialised) == (None, False, False)
        assert status.describe() == "STOPPED: no process"

    async def test_a_stale_pid_file_of_another_program_is_noted(self, host: FakeHost) -> None:
        sleeper = host.spawn("/usr/bin/sleep")
        host.write(PID_FILE, f"{sleeper.pid}\n")
        status = await plain(host).status()
        assert status.state == ProcessState.STOPPED
        assert status.notes == (
            f"stale pid file: pid {sleeper.pid} now belongs to another program "
            "(/usr/bin/sleep); it is left alone",
        )

    async def test_a_left_over_pid_file_is_noted(self, host: FakeHost) -> None:
        host.write(PID_FILE, "4999")
        status = await plain(host).status()
        assert status.state == ProcessState.STOPPED
        assert status.notes == ("left-over pid file of pid 4999, which has exited",)

    async def test_a_port_held_by_another_program_is_noted(self, host: FakeHost) -> None:
        squatter = host.spawn("/usr/bin/nc", ports=[SQL_PORT])
        status = await plain(host).status()
        assert status.state == ProcessState.STOPPED
        assert status.port_in_use
        assert status.notes == (f"port {SQL_PORT} is in use by pid {squatter.pid} (/usr/bin/nc)",)

    async def test_a_port_held_out_of_sight_is_noted(self, host: FakeHost) -> None:
        host.spawn("/usr/bin/nc", ports=[SQL_PORT], elsewhere=True)
        status = await plain(host).status()
        assert status.notes == (
            f"port {SQL_PORT} is in use by another process (not visible to obpilot's user)",
        )

    async def test_its_other_ports_in_use_are_reported(self, host: FakeHost) -> None:
        host.spawn("/usr/bin/nc", ports=[RPC_PORT])
        status = await plain(host, rpc_port=RPC_PORT).status()
        assert status.state == ProcessState.STOPPED
        assert status.other_ports_in_use == (RPC_PORT,)
        assert not status.port_in_use

    async def test_an_initialised_store_is_reported(self, host: FakeHost) -> None:
        host.initialised_homes.add(HOME)
        assert (await plain(host).status()).initialised

    async def test_a_server_on_its_way_out_is_waited_for(self, host: FakeHost) -> None:
        server = serve(host, lingers=2)
        host.exit(server)  # its last threads hold the lock and the port for two looks
        status = await plain(host).status()
        assert status.state == ProcessState.STOPPED
        assert not status.port_in_use
        assert host.probes == ["inspect"] * 3


# --------------------------------------------------------------------------- start


class TestStart:
    async def test_a_running_server_is_left_as_it_is(self, host: FakeHost) -> None:
        server = serve(host)
        lines: list[str] = []
        status = await plain(host).start(log=lines.append)
        assert status.pid == server.pid
        assert said(lines, f"already running (pid {server.pid}); nothing to do")
        assert host.launches == []

    async def test_a_conflict_is_refused(self, host: FakeHost) -> None:
        host.spawn("/usr/bin/python3", lock=PID_FILE)
        with pytest.raises(ServerProcessError, match="cannot start") as caught:
            await plain(host).start()
        assert caught.value.cause == Cause.BASE_DIR_IN_USE
        assert host.launches == []

    @pytest.mark.parametrize(
        ("port", "message"),
        [(SQL_PORT, f"port {SQL_PORT} is in use by pid"), (RPC_PORT, f"port {RPC_PORT} is in use")],
        ids=["sql port", "rpc port"],
    )
    async def test_a_busy_port_is_refused(self, host: FakeHost, port: int, message: str) -> None:
        host.spawn("/usr/bin/nc", ports=[port])
        with pytest.raises(ServerProcessError, match=message) as caught:
            await plain(host, rpc_port=RPC_PORT).start()
        assert caught.value.cause == Cause.PORT_BUSY
        assert host.launches == []

    async def test_launches_and_waits_until_it_answers_sql(self, host: FakeHost) -> None:
        lines: list[str] = []
        status = await plain(host, rpc_port=RPC_PORT).start(log=lines.append)
        assert status.state == ProcessState.RUNNING
        assert status.listen_ports == (SQL_PORT, RPC_PORT)
        assert host.probes == ["inspect", "launch"]  # the launch waits for SQL too
        [launch] = host.launches
        assert (launch["argv"], launch["env"], launch["cwd"]) == (
            [BINARY, "--port", str(SQL_PORT)],
            {"MODE": "test"},
            HOME,
        )
        assert (launch["pid_file"], launch["console"]) == (
            PID_FILE,
            f"{HOME}/log/obpilot-start.log",
        )
        assert said(lines, f"launching in {HOME}: MODE=test {BINARY} --port {SQL_PORT}")
        assert said(lines, f"started as pid {status.pid}")
        assert said(lines, "answers SQL after 2.0 s")

    async def test_a_server_answering_at_once_is_not_waited_for(self, host: FakeHost) -> None:
        host.launch_next(Launch(answers_at_once=True))
        status = await plain(host).start()
        assert status.state == ProcessState.RUNNING
        assert host.probes == ["inspect", "launch"]

    async def test_a_starting_server_is_waited_for_not_launched_again(self, host: FakeHost) -> None:
        server = serve(host, ports=[], answers_sql=False, planned_ports={SQL_PORT})
        lines: list[str] = []
        status = await plain(host).start(log=lines.append)
        assert (status.state, status.pid) == (ProcessState.RUNNING, server.pid)
        assert said(lines, f"pid {server.pid} is already starting; waiting for it")
        assert host.launches == []

    async def test_a_failed_launch_shows_its_output_and_log(self, host: FakeHost) -> None:
        host.write(SERVER_LOG, "starting\nERROR cannot open the data file\n")
        host.launch_next(Launch(exit_status=1, output="bad option\n"))
        with pytest.raises(ServerProcessError) as caught:
            await plain(host).start()
        assert caught.value.cause == Cause.START_FAILED
        assert caught.value.message.endswith(
            "plain exited with status 1 while starting; its output: bad option; "
            "log/plain.log: starting | ERROR cannot open the data file"
        )

    async def test_a_daemon_that_never_takes_the_lock_fails_the_start(self, host: FakeHost) -> None:
        host.launch_next(Launch(takes_lock=False))
        with pytest.raises(ServerProcessError) as caught:
            await plain(host).start()
        assert caught.value.cause == Cause.START_FAILED
        assert f"plain never took the lock on {PID_FILE} (its daemon exited?)" in (
            caught.value.message
        )
        assert caught.value.message.endswith("its output: (none); log/plain.log: (empty)")

    async def test_a_lock_taken_by_something_else_than_the_server_fails_the_start(
        self, host: FakeHost
    ) -> None:
        host.launch_next(Launch(cwd="/tmp"))
        with pytest.raises(ServerProcessError, match="is not the server that was launched") as e:
            await plain(host).start()
        assert e.value.cause == Cause.START_FAILED

    async def test_a_server_exiting_while_starting_shows_its_log(self, host: FakeHost) -> None:
        host.write(SERVER_LOG, "ERROR out of memory\n")
        host.launch_next(Launch(startup=Startup.CRASHES))
        with pytest.raises(ServerProcessError) as caught:
            await plain(host).start()
        assert caught.value.cause == Cause.START_FAILED
        assert "exited before answering SQL; log/plain.log: ERROR out of memory" in (
            caught.value.message
        )

    async def test_a_server_exiting_while_another_took_its_port_names_the_port(
        self, host: FakeHost
    ) -> None:
        host.launch_next(Launch(startup=Startup.CRASHES))
        host.before("launch", lambda: host.spawn("/usr/bin/nc", ports=[SQL_PORT]))
        with pytest.raises(ServerProcessError, match=f"port {SQL_PORT} is in use by pid") as e:
            await plain(host).start()
        assert e.value.cause == Cause.PORT_BUSY

    async def test_a_refused_login_fails_at_once(self, host: FakeHost) -> None:
        host.launch_next(Launch(password="another"))
        with pytest.raises(ServerProcessError, match="refuses the login of 'root'") as caught:
            await plain(host).start()
        assert caught.value.cause == Cause.NOT_READY

    async def test_a_server_too_slow_to_answer_is_left_running(self, host: FakeHost) -> None:
        host.launch_next(Launch(startup=Startup.SLOW))
        with pytest.raises(ServerProcessError, match="it is left running") as caught:
            await plain(host).start()
        assert caught.value.cause == Cause.NOT_READY
        assert "(the SQL port is not open yet)" in caught.value.message
        assert host.signals == []


# --------------------------------------------------------------------------- stop


class TestStop:
    async def test_a_stopped_server_gets_no_signal(self, host: FakeHost) -> None:
        lines: list[str] = []
        status = await plain(host).stop(log=lines.append)
        assert status.state == ProcessState.STOPPED
        assert said(lines, "already stopped; nothing to do")
        assert host.signals == []

    @pytest.mark.parametrize("force", [False, True])
    async def test_a_conflict_gets_no_signal(self, host: FakeHost, force: bool) -> None:
        host.spawn("/usr/bin/python3", lock=PID_FILE)
        with pytest.raises(ServerProcessError, match="refusing to signal") as caught:
            await plain(host).stop(force=force)
        assert caught.value.cause == Cause.NOT_OURS
        assert host.signals == []

    async def test_the_clean_stop_is_verified(self, host: FakeHost) -> None:
        server = serve(host)
        lines: list[str] = []
        status = await plain(host).stop(log=lines.append)
        assert status.state == ProcessState.STOPPED
        assert host.signals == [(server.pid, "USR1")]
        assert said(lines, f"pid {server.pid} exited 0.5 s after SIGUSR1")
        assert said(lines, f"stopped; pid {server.pid} gone and port {SQL_PORT} closed")

    async def test_force_kills_at_once(self, host: FakeHost) -> None:
        server = serve(host)
        await plain(host).stop(force=True)
        assert host.signals == [(server.pid, "KILL")]

    async def test_a_trapped_clean_stop_is_followed_by_a_kill(self, host: FakeHost) -> None:
        server = serve(host, clean_stop=CleanStop.TRAPPED)
        lines: list[str] = []
        status = await plain(host).stop(log=lines.append)
        assert status.state == ProcessState.STOPPED
        assert host.signals == [(server.pid, "USR1"), (server.pid, "KILL")]
        assert said(lines, f"pid {server.pid} still runs after 2 s; sending SIGKILL")

    async def test_a_server_surviving_the_kill_fails_the_stop(self, host: FakeHost) -> None:
        server = serve(host, survives_kill=True)
        with pytest.raises(ServerProcessError, match=r"still runs 0\.3 s after SIGKILL") as caught:
            await plain(host).stop(force=True)
        assert caught.value.cause == Cause.STILL_RUNNING
        assert server.pid in host.processes

    async def test_a_pid_reused_before_the_signal_is_not_signalled(self, host: FakeHost) -> None:
        server = serve(host)
        host.before("signal", lambda: host.reuse_pid(server, "/usr/bin/sleep"))
        with pytest.raises(ServerProcessError) as caught:
            await plain(host).stop()
        assert caught.value.cause == Cause.NOT_OURS
        assert (
            f"refusing to send SIGUSR1 to pid {server.pid}: "
            f"pid {server.pid} was reused by a newer process" in caught.value.message
        )
        assert host.signals == []

    async def test_a_server_gone_before_the_signal_is_stopped(self, host: FakeHost) -> None:
        server = serve(host)
        host.before("signal", lambda: host.exit(server))
        lines: list[str] = []
        status = await plain(host).stop(log=lines.append)
        assert status.state == ProcessState.STOPPED
        assert said(lines, f"pid {server.pid} had already exited")
        assert host.signals == []

    async def test_a_server_on_its_way_out_is_waited_for(self, host: FakeHost) -> None:
        serve(host, lingers=2)
        status = await plain(host).stop()
        assert status.state == ProcessState.STOPPED
        # One look, then the signal, whose answer waits until the lock and ports are free.
        assert host.probes == ["inspect", "signal"]

    async def test_a_lock_never_released_fails_the_stop(self, host: FakeHost) -> None:
        serve(host, lingers=1000)
        with pytest.raises(ServerProcessError, match="still not stopped: CONFLICT") as caught:
            await plain(host).stop()
        assert caught.value.cause == Cause.STILL_RUNNING

    async def test_a_port_kept_open_by_a_child_fails_the_stop(self, host: FakeHost) -> None:
        server = serve(host)
        # A child that inherited the listening socket, forked as the server stops.
        host.before("signal", lambda: host.spawn(BINARY, cwd=HOME, ports=[SQL_PORT], pid=5555))
        with pytest.raises(ServerProcessError) as caught:
            await plain(host).stop()
        assert caught.value.cause == Cause.PORT_STILL_OPEN
        assert caught.value.message.endswith(
            f"pid {server.pid} is gone but port {SQL_PORT} is in use by pid 5555 ({BINARY})"
        )

    async def test_another_port_kept_open_fails_the_stop(self, host: FakeHost) -> None:
        serve(host)
        host.before("signal", lambda: host.spawn("/usr/bin/nc", ports=[RPC_PORT]))
        with pytest.raises(ServerProcessError, match=f"port {RPC_PORT} is still in use") as e:
            await plain(host, rpc_port=RPC_PORT).stop()
        assert e.value.cause == Cause.PORT_STILL_OPEN


class TestFreezeBeforeStop:
    async def test_a_running_server_is_frozen_first(self, host: FakeHost) -> None:
        server = serve(host)
        lines: list[str] = []
        await plain(host, driver=FreezingDriver).stop(log=lines.append, freeze=True)
        assert server.statements == ["ALTER SYSTEM MINOR FREEZE"]
        assert host.probes[:3] == ["inspect", "inspect", "signal"]
        assert not said(lines, "minor freeze failed")

    async def test_a_failed_freeze_does_not_block_the_stop(self, host: FakeHost) -> None:
        server = serve(host, statement_error="ERROR 4012 (HY000): Timeout")
        lines: list[str] = []
        status = await plain(host, driver=FreezingDriver).stop(log=lines.append, freeze=True)
        assert status.state == ProcessState.STOPPED
        assert said(lines, "minor freeze failed (MysqlError: ERROR 4012 (HY000): Timeout)")
        assert host.signals == [(server.pid, "USR1")]

    @pytest.mark.parametrize(
        ("answers_sql", "force"), [(True, True), (False, False)], ids=["force", "starting"]
    )
    async def test_no_freeze_when_forced_or_not_running(
        self, host: FakeHost, answers_sql: bool, force: bool
    ) -> None:
        server = serve(host, answers_sql=answers_sql)
        await plain(host, driver=FreezingDriver).stop(freeze=True, force=force)
        assert server.statements == []

    async def test_a_server_kind_without_a_freeze_is_not_frozen(self, host: FakeHost) -> None:
        serve(host)
        await plain(host).stop(freeze=True)
        assert host.probes == ["inspect", "signal"]
