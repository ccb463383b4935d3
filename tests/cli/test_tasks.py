"""`obpilot task ...` against a real server: listing, showing, logs, and Ctrl-C, which
stops watching only."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import yaml

from tests.cli.conftest import Cli, Stack
from tests.support.server import REPO_ROOT


def test_list_show_and_logs(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    listed = json.loads(cli("task", "list", "-o", "json").stdout)["contents"]
    takeover = next(t for t in listed if t["name"] == "Take over OB cluster")
    assert takeover["status"] == "SUCCESSFUL"
    table = cli("task", "list", "--status", "SUCCESSFUL")
    assert table.exit_code == 0
    assert "Take over OB cluster" in table.stdout

    shown = yaml.safe_load(cli("task", "show", str(takeover["id"]), "-o", "yaml").stdout)
    assert shown["id"] == takeover["id"]
    subtask = shown["subtasks"][0]
    text = cli("task", "show", str(takeover["id"]))
    assert text.stdout.splitlines()[1].split()[:2] == ["STAGE", "ID"]

    logs = cli("task", "logs", str(takeover["id"]), str(subtask["id"]))
    assert logs.exit_code == 0
    assert logs.stdout.startswith("{EXECUTE}{")  # each run's header line
    every = cli("task", "logs", str(takeover["id"]))
    assert f"[{subtask['id']} {subtask['name']}]" in every.stdout
    followed = cli("task", "logs", str(takeover["id"]), "-f")
    assert followed.exit_code == 0
    # The same lines, in the order they were written rather than by subtask.
    assert sorted(followed.stdout.splitlines()) == sorted(every.stdout.splitlines())

    assert cli("task", "show", "999999").exit_code == 2
    assert cli("task", "show", "x").exit_code == 2
    assert cli("task", "skip", str(takeover["id"]), str(subtask["id"]), "-y").exit_code == 3


def test_ctrl_c_stops_watching_only(stack: Stack, cli: Cli) -> None:
    """On a terminal (a pty here): the live view, without colour under NO_COLOR; Ctrl-C
    leaves the task running and says how to follow it again."""
    cli.login(stack)
    env = {
        **os.environ,
        "OBPILOT_CLI_CONFIG": str(cli.config),
        "PYTHONPATH": str(REPO_ROOT),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    controller, terminal = pty.openpty()
    watching = subprocess.Popen(
        [sys.executable, "-m", "obpilot", "cluster", "stop", "demo", "-y"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        # As a terminal's foreground program has it: tests run in the background inherit an
        # ignored SIGINT, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(terminal)
    shown = _read_until(controller, b"Stop observer process x3")
    watching.send_signal(signal.SIGINT)
    # Read on while it exits: a terminal nobody reads fills up, and its writer then blocks.
    shown += _read_until(controller, b"")
    assert watching.wait(30) == 130
    os.close(controller)
    text = shown.decode(errors="replace")
    assert "[1/7] Prepare stop cluster" in text
    assert "\x1b[32m" not in text  # no colour (the live view still moves the cursor)
    task_id = int(text.split("obpilot task watch ")[1].split()[0])
    assert stack.api("GET", f"/api/v2/tasks/instances/{task_id}")["status"] == "RUNNING"
    assert cli("task", "watch", str(task_id)).exit_code == 0
    assert cli("cluster", "start", "demo", "-y").exit_code == 0
    assert all(server.answers_sql() for server in stack.fleet.servers)


def test_operations_ask_first_on_a_terminal(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    env = {**os.environ, "OBPILOT_CLI_CONFIG": str(cli.config), "PYTHONPATH": str(REPO_ROOT)}
    controller, terminal = pty.openpty()
    asking = subprocess.Popen(
        [sys.executable, "-m", "obpilot", "cluster", "stop", "demo"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    question = _read_until(controller, b"[y/N]")
    assert b"Stop cluster demo (id 1, 3 servers)?" in question
    os.write(controller, b"n\n")
    assert asking.wait(30) == 2
    assert b"not confirmed: nothing done" in _read_until(controller, b"")
    os.close(controller)
    assert stack.api("GET", "/api/v2/ob/clusters/1")["status"] == "RUNNING"


def _read_until(controller: int, wanted: bytes, within: float = 30.0) -> bytes:
    """What the terminal shows until `wanted` appears (b"": until the program closed it)."""
    seen = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not (wanted and wanted in seen):
        ready, _, _ = select.select([controller], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the program exited and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert not wanted or wanted in seen, seen.decode(errors="replace")
    return seen
