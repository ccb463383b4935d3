"""The observer driver: its configuration checks and start command on a fake host (no
process at all), then, locally and over SSH, against a FAKE `bin/observer`
(tests/hosts/fake_observer.py): no OceanBase observer binary exists here. That fake
daemonises, locks run/observer.pid, records its command line, listens on the SQL and
RPC ports, speaks enough MySQL protocol (password login, SELECT 1, statements) and stops
on SIGUSR1; so what is tested is obpilot's side: the rebuilt start command, identity,
SQL checks with a password, minor freeze, clean stop and its verification."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from obpilot.errors import InvalidServerParameter, ServerProcessError
from obpilot.hosts.drivers import Cause, ObserverDriver, ProcessSpec, ProcessState, driver_for
from obpilot.hosts.executor import HostExecutor
from tests.support.databases import free_port
from tests.support.fake_host import FakeHost

FAKE_OBSERVER = Path(__file__).resolve().parents[1] / "fake_observer.py"


def install(home: Path, *, password: str = "", script: str | None = None) -> None:
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "etc").mkdir()
    text = script or FAKE_OBSERVER.read_text()
    binary = home / "bin" / "observer"
    binary.write_text(text.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
    binary.chmod(0o755)
    if password:
        (home / "etc" / "fake_root_password").write_text(password)


SQL_PASSWORD = "s3cret"


def spec(home: Path, **changes: object) -> ProcessSpec:
    values: dict[str, object] = {
        "kind": "observer",
        "sql_port": free_port(),
        "rpc_port": free_port(),
        "home_path": str(home),
        "zone_name": "zone1",
        "cluster_name": "demo",
        "ob_cluster_id": 7,
        "server_ip": "127.0.0.1",
        "parameters": {
            "memory_limit": "8G",
            "datafile_size": "2G",
            "syslog_level": "WARN",
            "data_dir": str(home / "store"),
        },
        "sql_password": SQL_PASSWORD,
    }
    values.update(changes)
    return ProcessSpec(**values)  # type: ignore[arg-type]


def journal(home: Path) -> list[dict[str, object]]:
    lines = (home / "log" / "observer.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------- on a fake host

OB_HOME = Path("/home/admin/oceanbase")


def fake_host() -> FakeHost:
    """A host with the observer installed in OB_HOME; it loads only with HOME/lib."""
    host = FakeHost()
    host.install(
        f"{OB_HOME}/bin/observer",
        "observer (OceanBase_CE 4.2.1.0)\n\nREVISION: fake",
        library_path=f"{OB_HOME}/lib",
    )
    return host


async def test_the_start_command_is_rebuilt_from_the_stored_configuration() -> None:
    host = fake_host()
    server = spec(OB_HOME, sql_port=2881, rpc_port=2882)
    lines: list[str] = []
    status = await ObserverDriver(server, host).start(log=lines.append)
    assert status.state == ProcessState.RUNNING
    assert status.listen_ports == (2881, 2882)
    [launch] = host.launches
    assert launch["argv"] == [
        f"{OB_HOME}/bin/observer",
        "-p", "2881", "-P", "2882", "-z", "zone1", "-n", "demo", "-c", "7",
        "-d", f"{OB_HOME}/store", "-I", "127.0.0.1", "-l", "WARN",
        "-o", "datafile_size=2G,memory_limit=8G",
    ]  # fmt: skip
    assert launch["env"] == {"LD_LIBRARY_PATH": f"{OB_HOME}/lib"}
    assert launch["cwd"] == str(OB_HOME)
    assert launch["sql"]["password"] == SQL_PASSWORD


async def test_a_missing_observer_binary_is_not_found() -> None:
    host = FakeHost()
    with pytest.raises(ServerProcessError, match="cannot run") as caught:
        await ObserverDriver(spec(OB_HOME), host).start()
    assert caught.value.cause == Cause.BINARY_NOT_FOUND
    assert len(host.launches) == 1


async def test_a_stop_with_freeze_freezes_this_server_only() -> None:
    host = fake_host()
    server = host.run_server(
        str(OB_HOME),
        f"{OB_HOME}/bin/observer",
        pid_file=f"{OB_HOME}/run/observer.pid",
        ports=[2881, 2882],
        password=SQL_PASSWORD,
    )
    await ObserverDriver(spec(OB_HOME, sql_port=2881, rpc_port=2882), host).stop(freeze=True)
    assert server.statements == ["ALTER SYSTEM MINOR FREEZE SERVER = ('127.0.0.1:2882')"]
    assert host.signals == [(server.pid, "USR1")]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"rpc_port": None}, "needs rpcPort"),
        ({"zone_name": None, "ob_cluster_id": None}, "needs zone, obClusterId"),
        ({"parameters": {"mysql_port": "2881"}}, "comes from the server's own settings"),
        ({"parameters": {"memory_limit": "8G,cpu_count=1"}}, "without spaces, commas"),
        ({"parameters": {"rootPwd": "x"}}, "not a start option"),
        ({"server_ip": "host-1"}, "Invalid observer address"),
    ],
)
async def test_an_incomplete_or_bad_configuration_is_refused(
    changes: dict[str, object], reason: str
) -> None:
    host = fake_host()
    with pytest.raises(InvalidServerParameter, match=reason):
        await ObserverDriver(spec(OB_HOME, **changes), host).start()
    assert not host.contacted


def test_freeze_statement_without_the_servers_address() -> None:
    driver = ObserverDriver(spec(OB_HOME, server_ip=None), FakeHost())
    assert driver.freeze_statement() == "ALTER SYSTEM MINOR FREEZE"
    v6 = ObserverDriver(spec(OB_HOME, server_ip="::1", rpc_port=2882), FakeHost())
    assert v6.freeze_statement() == "ALTER SYSTEM MINOR FREEZE SERVER = ('[::1]:2882')"


# --------------------------------------------------------------------------- a fake bin/observer


async def test_start_status_freeze_and_clean_stop(executor: HostExecutor, tmp_path: Path) -> None:
    home = tmp_path / "observer"
    install(home, password=SQL_PASSWORD)
    server = spec(home)
    driver = driver_for(server, executor)
    assert isinstance(driver, ObserverDriver)
    lines: list[str] = []
    try:
        started = await driver.start(log=lines.append)
        assert started.state == ProcessState.RUNNING
        assert started.version == "5.7.25-OceanBase_CE-v4.2.1.0"
        start = journal(home)[0]
        assert start["argv"] == [
            "-p", str(server.sql_port), "-P", str(server.rpc_port),
            "-z", "zone1", "-n", "demo", "-c", "7",
            "-d", str(home / "store"), "-I", "127.0.0.1", "-l", "WARN",
            "-o", "datafile_size=2G,memory_limit=8G",
        ]  # fmt: skip
        assert start["cwd"] == str(home)
        assert start["LD_LIBRARY_PATH"] == str(home / "lib")
        assert server.rpc_port is not None
        assert port_open(server.rpc_port)

        again = await driver.start(log=lines.append)
        assert again.pid == started.pid
        assert any("already running" in line for line in lines)

        stopped = await driver.stop(log=lines.append, freeze=True)
        assert stopped.state == ProcessState.STOPPED
        freeze = f"ALTER SYSTEM MINOR FREEZE SERVER = ('127.0.0.1:{server.rpc_port}')"
        assert {"query": freeze} in journal(home)
        assert any("SIGUSR1" in line for line in lines)
        assert not any("SIGKILL" in line for line in lines)
        assert not port_open(server.sql_port)
        assert not port_open(server.rpc_port)
    finally:
        await driver.stop(force=True)


async def test_a_wrong_sql_password_shows_in_the_status(
    executor: HostExecutor, tmp_path: Path
) -> None:
    home = tmp_path / "observer"
    install(home, password=SQL_PASSWORD)
    driver = driver_for(spec(home), executor)
    try:
        await driver.start()
        wrong = driver_for(
            ProcessSpec(**{**driver.spec.__dict__, "sql_password": "guess"}), executor
        )
        status = await wrong.status()
        assert status.state == ProcessState.STARTING
        assert "1045" in (status.sql_error or "")
        assert "Access denied" in (status.sql_error or "")
        with pytest.raises(ServerProcessError, match="refuses the login of 'root'") as caught:
            await wrong.start()  # at once, not after the start timeout
        assert caught.value.cause == Cause.NOT_READY
    finally:
        await driver.stop(force=True)


async def test_a_busy_rpc_port_is_refused_before_start(
    executor: HostExecutor, tmp_path: Path
) -> None:
    home = tmp_path / "observer"
    install(home)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = spec(home, rpc_port=listener.getsockname()[1])
        with pytest.raises(ServerProcessError, match=f"port {server.rpc_port} is in use") as caught:
            await driver_for(server, executor).start()
    assert caught.value.cause == Cause.PORT_BUSY
    assert not (home / "run").exists()


async def test_a_failing_observer_start_shows_its_output(
    executor: HostExecutor, tmp_path: Path
) -> None:
    home = tmp_path / "observer"
    failing = "#!/usr/bin/env python3\nimport sys\nif '-V' in sys.argv: sys.exit(0)\n"
    failing += "print('ERROR: cannot read etc/observer.config.bin', file=sys.stderr)\nsys.exit(1)\n"
    install(home, script=failing)
    with pytest.raises(ServerProcessError) as caught:
        await driver_for(spec(home), executor).start()
    assert caught.value.cause == Cause.START_FAILED
    assert "exited with status 1" in caught.value.message
    assert "cannot read etc/observer.config.bin" in caught.value.message
