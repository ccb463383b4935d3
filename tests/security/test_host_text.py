"""Finding 15: what a host reports (its system, a process's command line, a file's end, an
error, a command's stderr) was stored, logged and shown raw: a newline forged a log line,
an escape sequence reached the terminal. It is made printable where it enters obpilot
(the agent's link, a command's result), and the CLI prints every value as plain text."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlalchemy import String
from typer.testing import CliRunner, Result

from obpilot.cli import output
from obpilot.cli.main import build_app
from obpilot.errors import HostError, ServerProcessError
from obpilot.formats import UNPRINTABLE
from obpilot.hosts import agent_link
from obpilot.hosts.agent_link import AgentLink, agent_source
from obpilot.hosts.drivers import ProcessSpec, SeekdbDriver
from obpilot.hosts.executor import HostCommandFailed
from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.protocol import OWNERS, SURVEY, TAIL
from obpilot.inventory.models import Host
from tests.cli.fake_api import FakeApi, error, ok, serve, task
from tests.provision.test_routes import BATCH_CREATE, host_of, local_batch, placement, post
from tests.support.operations import wait_task

#: What a compromised host would say: a terminal title and colour, HTML, a line of its own
#: for the log, a right-to-left override, and a C1 control sequence (CSI).
HOSTILE = "\x1b]0;pwned\x07\x1b[31m<b>red</b>\nFORGED log line\u202etxt.exe\x9b2J"
CONSOLE_SOURCES = Path(__file__).resolve().parents[2] / "console" / "src"
OPERATING_SYSTEM_COLUMN = cast(String, Host.__table__.c.operating_system.type).length


def assert_printable(text: str) -> None:
    assert not set(text) & UNPRINTABLE, repr(text)


def hostile_agent(padding: str = "") -> bytes:
    """The real agent, but telling what `HOSTILE` says: as the end of its system's name
    (then `padding`), and as the error of `owners`."""
    patch = textwrap.dedent(
        f"""
        _real_survey = survey
        def survey(request):
            answer = _real_survey(request)
            answer["operating_system"] += {HOSTILE + padding!r}
            return answer
        def owners(request):
            raise OSError({HOSTILE!r})
        ACTIONS["survey"] = survey
        ACTIONS["owners"] = owners
        """
    ).encode()
    start = b'if __name__ == "obpilot_agent":'
    source = agent_source()
    assert source.count(start) == 1
    return source.replace(start, patch + start)


@pytest.fixture
async def executor() -> AsyncIterator[LocalExecutor]:
    host = LocalExecutor()
    yield host
    await host.close()


def shell_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


#: Writes `HOSTILE` on stderr, byte for byte.
SAY_HOSTILE = f"printf '%s\\n' {shlex.quote(HOSTILE)} >&2"


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[int]:
    """A process listening on a port, its command line saying `HOSTILE` first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    script = tmp_path / "l.py"
    script.write_text(
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[2]))); s.listen()\n"
        "print('listening', flush=True); time.sleep(600)\n"
    )
    argv = [sys.executable, str(script), HOSTILE, str(port)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == b"listening\n"
        try:
            yield port
        finally:
            process.kill()


async def test_every_text_of_an_agent_answer_is_printable(
    executor: LocalExecutor, listener: int, tmp_path: Path
) -> None:
    link = AgentLink(executor, source=hostile_agent())
    try:
        survey = await link.call(
            SURVEY, {"paths": ["/"], "ports": [listener]}, step="survey", time_limit=30
        )
        system = survey["operating_system"]
        command = survey["ports"][str(listener)]["command"]
        assert command is not None
        for text in (system, command):
            assert_printable(text)
            assert "<b>red</b> FORGED log line" in text  # what it said, as one line
        log = tmp_path / "server.log"
        log.write_text(f"first\n{HOSTILE}\nlast\n")
        tail = await link.call(TAIL, {"path": str(log)}, step="tail", time_limit=30)
        lines = tail["text"].splitlines()  # a file's end keeps its lines, only its lines
        assert lines[0] == "first"
        assert lines[-1] == "last"
        for line in lines:
            assert_printable(line)
        with pytest.raises(HostError) as failed:
            await link.call(OWNERS, {"paths": [str(tmp_path)]}, step="look", time_limit=30)
        assert_printable(failed.value.message)
        assert "FORGED log line" in failed.value.message
    finally:
        await link.close()


async def test_a_commands_output_is_printable_where_errors_quote_it(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    script = shell_script(tmp_path / "noisy", f"{SAY_HOSTILE}\nexit 3")
    with pytest.raises(HostCommandFailed) as failed:
        await executor.run([str(script)], step="check", time_limit=30)
    assert_printable(failed.value.message)
    assert "exit status 3; stderr: " in failed.value.message
    assert "FORGED log line" in failed.value.message

    result = await executor.run([str(script)], step="check", time_limit=30, check=False)
    assert "\x1b" not in result.stderr
    assert result.stderr.splitlines()[1].startswith("FORGED log line")  # its own lines

    driver = SeekdbDriver(
        ProcessSpec(kind="seekdb", sql_port=2881, home_path=str(tmp_path)), executor
    )
    problem = await driver.binary_problem(str(script))
    assert isinstance(problem, ServerProcessError)
    assert_printable(problem.message)


async def test_an_agents_stderr_is_printable_in_the_error_that_quotes_it(
    tmp_path: Path,
) -> None:
    python = shell_script(tmp_path / "python", f"{SAY_HOSTILE}\nexit 1")
    executor = LocalExecutor(python=str(python))
    try:
        with pytest.raises(HostError) as failed:
            await executor.agent.call(TAIL, {"path": "/etc/hostname"}, step="tail", time_limit=30)
    finally:
        await executor.close()
    assert_printable(failed.value.message)
    assert "FORGED log line" in failed.value.message


async def test_prepare_host_stores_and_logs_the_system_a_host_reports_as_text(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_link, "agent_source", lambda: hostile_agent(padding="x" * 200))
    batch = await post(client, BATCH_CREATE, local_batch(await placement(client)))
    ended = await wait_task(client, batch["id"])
    assert ended["status"] == "SUCCESSFUL", ended
    [host_id] = batch["hostIds"]
    system = (await host_of(client, host_id))["operatingSystem"]
    assert_printable(system)
    assert "FORGED log line" in system
    assert OPERATING_SYSTEM_COLUMN is not None
    assert len(system) <= OPERATING_SYSTEM_COLUMN
    [check] = [s for s in ended["subtasks"] if s["name"] == "Pre check for create host"]
    answer = await client.get(f"/api/v2/tasks/instances/{batch['id']}/subtasks/{check['id']}/log")
    log: str = answer.json()["data"]["log"]
    assert "FORGED log line" in log
    for line in log.splitlines():
        assert_printable(line)
        assert not line.startswith("FORGED")


def test_the_console_renders_no_host_text_as_html() -> None:
    """The console is React, which renders text as text, unless told otherwise."""
    sources = [path for path in CONSOLE_SOURCES.rglob("*") if path.suffix in (".ts", ".tsx")]
    assert sources
    for path in sources:
        text = path.read_text()
        for way in ("dangerouslySetInnerHTML", "innerHTML", "insertAdjacentHTML", "document.write"):
            assert way not in text, f"{path} uses {way}"


# -------------------------------------------------------------------- the CLI

#: An API value that would retitle the terminal, and rich markup.
TERMINAL_TRICK = "\x1b]0;pwned\x07[red]x[/red] :warning:"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeApi]:
    for api in serve():
        api.profile(tmp_path / "cli.toml")
        yield api


def obpilot(tmp_path: Path, *args: str) -> Result:
    env: dict[str, str | None] = {
        "OBPILOT_CLI_CONFIG": str(tmp_path / "cli.toml"),
        "NO_COLOR": None,
        "OBPILOT_PROFILE": None,
    }
    return CliRunner().invoke(build_app(), list(args), env=env)


def assert_plain(shown: str) -> None:
    assert not set(shown) & {"\x1b", "\x07"}, repr(shown)
    assert "]0;pwned" in shown  # shown, as text
    assert "[red]x[/red] :warning:" in shown  # neither markup nor an emoji code


def test_a_table_prints_api_values_as_plain_text(fake: FakeApi, tmp_path: Path) -> None:
    host = {"id": 1, "name": "h1", "status": TERMINAL_TRICK, "operatingSystem": TERMINAL_TRICK}
    fake.on("GET", "/api/v2/compute/hosts", ok({"contents": [host]}))
    listed = obpilot(tmp_path, "host", "list")
    assert listed.exit_code == 0, listed.output
    assert_plain(listed.stdout)
    [row] = listed.stdout.splitlines()[1:]
    assert row.count("]0;pwned") == 2


def test_a_task_and_an_error_print_api_values_as_plain_text(fake: FakeApi, tmp_path: Path) -> None:
    fake.add_task(task(7, f"Stop {TERMINAL_TRICK}", status="FAILED"))
    shown = obpilot(tmp_path, "task", "show", "7")
    assert shown.exit_code == 0, shown.output
    assert_plain(shown.stdout)

    fake.on("GET", "/api/v2/compute/hosts", error(500, "COM10999", f"broken: {TERMINAL_TRICK}"))
    failed = obpilot(tmp_path, "host", "list")
    assert failed.exit_code != 0
    assert_plain(failed.stderr)


def test_a_string_printed_by_a_console_is_not_read_as_markup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output.stdout().print(TERMINAL_TRICK)
    output.say(TERMINAL_TRICK)
    printed = capsys.readouterr()
    assert_plain(printed.out)
    assert_plain(printed.err)


def test_a_log_line_and_a_document_keep_no_escape(capsys: pytest.CaptureFixture[str]) -> None:
    output.write_line(f"[1 Stop] {HOSTILE}")
    output.print_document({"operatingSystem": HOSTILE}, output.OutputFormat.JSON)
    written = capsys.readouterr().out
    line, *document = written.splitlines()
    assert_printable(line)
    assert "FORGED log line" in line
    assert not set("".join(document)) & UNPRINTABLE
    assert json.loads("\n".join(document)) == {"operatingSystem": HOSTILE}
