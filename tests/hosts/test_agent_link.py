"""The host agent as obpilot talks to it, on this machine and over SSH: many requests in
flight on one agent, an agent that dies mid-request, an agent of another version, and
the exit of an identified process reported the moment it happens."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from obpilot.errors import HostError, HostUnreachable
from obpilot.hosts.agent import agent_version
from obpilot.hosts.agent_link import AgentLink, agent_source
from obpilot.hosts.executor import HostExecutor, ProcessExit
from obpilot.hosts.protocol import (
    INSPECT,
    SIGNAL,
    TAIL,
    WAIT_READY,
    InspectRequest,
    WaitReadyRequest,
)
from tests.hosts.processes import alive
from tests.support.databases import free_port

#: A stand-in server: works in its home, holds the lock on its pid file, sleeps.
SERVER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    os.chdir(sys.argv[1])
    pid_file = open("server.pid", "w")
    fcntl.lockf(pid_file, fcntl.LOCK_EX)
    pid_file.write(str(os.getpid()))
    pid_file.flush()
    print("locked", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], InspectRequest]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"locked\n"
    request: InspectRequest = {
        "pid_file": str(tmp_path / "server.pid"),
        "home": str(tmp_path),
        "binaries": [sys.executable],
        "port": free_port(),
        "other_ports": [],
    }
    try:
        yield process, request
    finally:
        process.kill()
        process.wait()


def never_ready(tmp_path: Path, *, timeout: float) -> WaitReadyRequest:
    """A wait for SQL from this test process, which never answers: it lasts `timeout`."""
    return {
        "pid_file": str(tmp_path / "none.pid"),
        "home": str(tmp_path),
        "binaries": [],
        "port": free_port(),
        "other_ports": [],
        "pid": os.getpid(),
        "start_ticks": None,
        "timeout": timeout,
    }


def link_of(executor: HostExecutor) -> AgentLink:
    assert isinstance(executor.agent, AgentLink)
    return executor.agent


async def test_many_requests_in_flight_share_one_agent(
    executor: HostExecutor, tmp_path: Path
) -> None:
    files = []
    for number in range(40):
        path = tmp_path / f"f{number}"
        path.write_text(f"file {number}")
        files.append(path)
    slow = asyncio.create_task(  # a wait in flight does not hold the others up
        executor.agent.call(
            WAIT_READY, never_ready(tmp_path, timeout=1.0), step="wait", time_limit=30
        )
    )
    answers = await asyncio.gather(
        *(
            executor.agent.call(TAIL, {"path": str(path)}, step="tail", time_limit=30)
            for path in files
        )
    )
    assert [answer["text"] for answer in answers] == [f"file {n}" for n in range(40)]
    assert not slow.done()
    assert (await slow)["state"] == "timeout"
    pid = link_of(executor).pid
    assert pid is not None
    await executor.agent.call(TAIL, {"path": str(files[0])}, step="tail", time_limit=30)
    assert link_of(executor).pid == pid


async def test_an_agent_killed_mid_request_fails_it_clearly_and_the_next_call_works(
    executor: HostExecutor, tmp_path: Path
) -> None:
    await executor.agent.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    first = link_of(executor).pid
    assert first is not None
    waiting = asyncio.create_task(
        executor.agent.call(
            WAIT_READY, never_ready(tmp_path, timeout=60.0), step="wait for SQL", time_limit=90
        )
    )
    await asyncio.sleep(0.3)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(HostUnreachable, match=r"wait for SQL: unreachable: the agent .* ended"):
        await asyncio.wait_for(waiting, 30)
    answer = await executor.agent.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    assert answer["exists"]
    assert link_of(executor).pid not in (None, first)


async def test_an_agent_of_another_version_is_replaced(executor: HostExecutor) -> None:
    link = link_of(executor)
    link.source = agent_source() + b"\n# an older text\n"
    await link.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    older = link.pid
    link.source = agent_source()
    await link.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    assert link.pid not in (None, older)
    assert older is not None
    for _ in range(100):  # the replaced agent exits with its closed stdin
        if not alive(older):
            break
        await asyncio.sleep(0.05)
    assert not alive(older)


async def test_an_agent_that_answers_as_another_version_is_never_used(
    executor: HostExecutor,
) -> None:
    impostor = (
        b"import json, sys\n"
        b'print(json.dumps({"agent": "0000", "pid": 1, "exit_watch": "proc"}), flush=True)\n'
        b"sys.stdin.read()\n"
    )
    link = AgentLink(executor, source=impostor)
    with pytest.raises(HostError, match="answered as version 0000, not " + agent_version(impostor)):
        await link.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    assert link.pid is None


async def test_a_host_without_the_python_gives_a_clear_error(tmp_path: Path) -> None:
    from obpilot.hosts.local import LocalExecutor

    executor = LocalExecutor(python=str(tmp_path / "no-python"))
    with pytest.raises(HostUnreachable, match=r"cannot run .*no-python"):
        await executor.agent.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    await executor.close()


async def test_the_exit_of_an_identified_process_is_reported_at_once(
    executor: HostExecutor, server: tuple[subprocess.Popen[bytes], InspectRequest]
) -> None:
    process, request = server
    exits: asyncio.Queue[ProcessExit] = asyncio.Queue()
    executor.agent.on_exit(exits.put_nowait)
    report = await executor.agent.call(INSPECT, request, step="look", time_limit=30)
    [identified] = report["processes"]
    assert (identified["pid"], identified["problems"]) == (process.pid, [])

    process.kill()
    exited = await asyncio.wait_for(exits.get(), 10)
    assert (exited.pid, exited.start_ticks, exited.home) == (
        process.pid,
        identified["start_ticks"],
        request["home"],
    )
    assert exited.host == executor.label


async def test_a_signal_waits_for_the_exit_and_reports_what_is_left(
    executor: HostExecutor, server: tuple[subprocess.Popen[bytes], InspectRequest]
) -> None:
    process, request = server
    report = await executor.agent.call(INSPECT, request, step="look", time_limit=30)
    start_ticks = report["processes"][0]["start_ticks"]
    answer = await executor.agent.call(
        SIGNAL,
        {
            "pid": process.pid,
            "start_ticks": start_ticks,
            "signal": "KILL",
            "binaries": request["binaries"],
            "home": request["home"],
            "pid_file": request["pid_file"],
            "wait_seconds": 10,
            "settle": request,
            "settle_seconds": 5,
        },
        step="kill",
        time_limit=30,
    )
    process.wait()
    assert (answer["sent"], answer["gone"]) == (True, True)
    assert answer["waited"] < 10
    left = answer["report"]
    assert (left["lock_holder"], left["processes"]) == (None, [])


async def test_a_reused_pid_is_never_signalled(
    executor: HostExecutor, server: tuple[subprocess.Popen[bytes], InspectRequest]
) -> None:
    process, request = server
    report = await executor.agent.call(INSPECT, request, step="look", time_limit=30)
    start_ticks = report["processes"][0]["start_ticks"]
    answer = await executor.agent.call(
        SIGNAL,
        {
            "pid": process.pid,
            "start_ticks": start_ticks + 1,  # as a newer process with the same pid would
            "signal": "KILL",
            "binaries": request["binaries"],
            "home": request["home"],
            "pid_file": request["pid_file"],
            "wait_seconds": 1,
        },
        step="kill",
        time_limit=30,
    )
    assert answer["sent"] is False
    assert answer.get("problems") == [f"pid {process.pid} was reused by a newer process"]
    assert alive(process.pid)
