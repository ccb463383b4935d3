"""`obpilot demo` end to end, as a user runs it: a real process creating its cluster of
real seekdb servers through the API (the real pylibseekdb wheel as its package), the
printed commands, a rerun that reuses everything, and `--down` deleting it through the
API."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pymysql
import pytest

from tests.support.databases import free_port
from tests.support.fleet import process_alive
from tests.support.wheels import WHEELS, locked_wheel

REPO_ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class Banner:
    url: str
    password: str
    commands: dict[str, str]  # "list", "stop", "follow" -> shell command
    cli: dict[str, str]  # "path", "login", "list", "stop", "follow" -> the CLI's commands


class Demo:
    """`python -m obpilot demo` with its own OBPILOT_HOME and nothing else of the
    caller's OBPILOT_* environment."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.environment = {k: v for k, v in os.environ.items() if not k.startswith("OBPILOT_")}
        # As in a fresh checkout: obpilot is .venv/bin/obpilot, not on PATH.
        venv_bin = str(Path(sys.executable).parent)
        path = [d for d in os.environ.get("PATH", "").split(":") if d != venv_bin]
        self.environment.update(
            OBPILOT_HOME=str(home), PYTHONPATH=str(REPO_ROOT), PATH=":".join(path)
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def output(self) -> Path:
        return self.home / f"demo-{self.runs}.out"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "obpilot", "demo", *args],
            env=self.environment,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, within: float = 300) -> Banner:
        self.runs += 1
        self.home.mkdir(parents=True, exist_ok=True)
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "obpilot", "demo", "--port", str(self.port)),
                    *("--wheels", str(WHEELS), *args),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.environment,
                cwd=self.home,
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.output.read_text(errors="replace")
            if "Ctrl-C stops serving" in text:
                return parse_banner(text)
            if self.process.poll() is not None:
                raise AssertionError(f"obpilot demo exited with {self.process.returncode}:\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"no banner within {within} s:\n{self.text()}")

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def kill(self) -> None:
        """SIGKILL: the serving demo is gone at once, saying nothing."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def parse_banner(text: str) -> Banner:
    url = re.search(r"^  URL +(\S+)$", text, re.MULTILINE)
    password = re.search(r"^  password +(\S+)", text, re.MULTILINE)
    assert url, text
    assert password, text
    lines = text.splitlines()

    def command_after(title: str, offset: int = 1) -> str:
        index = next(i for i, line in enumerate(lines) if line.startswith(title))
        return lines[index + offset].strip()

    return Banner(
        url=url.group(1),
        password=password.group(1),
        commands={
            "list": command_after("List clusters"),
            "stop": command_after("Stop the cluster"),
            "follow": command_after("Follow the task"),
        },
        cli={
            "path": command_after("obpilot is not on PATH"),
            "login": command_after("The CLI logs in once"),
            "list": command_after("List clusters", 2),
            "stop": command_after("Stop the cluster", 2),
            "follow": command_after("Follow the task", 2),
        },
    )


def demo_processes(root: Path) -> list[int]:
    """Processes running from under the demo's directory (seekdb keeps its base dir as
    its working directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(root) and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def seekdb_pids(root: Path) -> dict[str, int]:
    return {
        pid_file.parents[1].name: int(pid_file.read_text().strip())
        for pid_file in sorted(root.glob("servers/*/run/seekdb.pid"))
    }


def sql_answers(port: int, password: str) -> str:
    connection = pymysql.connect(
        host="127.0.0.1", port=port, user="root", password=password, connect_timeout=10
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            return str(cursor.fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("curl is needed to run the demo's printed commands")
        pytest.skip("curl is not installed")
    locked_wheel()
    running = Demo(tmp_path / "home", free_port())
    yield running
    running.kill()
    # Whatever a failed test left: the demo's own teardown, then anything still there by pid.
    root = running.home / "demo"
    if root.exists():
        running.run("--down")
    for pid in demo_processes(root):
        os.kill(pid, signal.SIGKILL)


def test_demo_up_rerun_stop_and_down(demo: Demo) -> None:
    root = demo.home / "demo"
    banner = demo.start("--zones", "2")
    assert banner.url == f"http://127.0.0.1:{demo.port}"
    assert (root / "admin-password").stat().st_mode & 0o777 == 0o600
    assert (root / "admin-password").read_text().strip() == banner.password
    user = f"admin:{banner.password}"
    assert banner.commands["list"] == f"curl -sS -u {user} {banner.url}/api/v2/ob/clusters"

    # What the printed "list clusters" command asks.
    listed = httpx.get(f"{banner.url}/api/v2/ob/clusters", auth=("admin", banner.password))
    assert listed.status_code == 200, listed.text
    clusters = listed.json()["data"]["contents"]
    assert [(c["name"], c["status"], len(c["zones"])) for c in clusters] == [("demo", "RUNNING", 2)]
    assert clusters[0]["origin"] == "CREATED"
    servers = [s for zone in clusters[0]["zones"] for s in zone["servers"]]
    assert {s["status"] for s in servers} == {"RUNNING"}
    assert {Path(s["homePath"]).name for s in servers} == {"zone1-1", "zone2-1"}
    assert all(Path(s["homePath"]).parent == root / "servers" for s in servers)
    # root has the demo's password; each server answers SQL.
    assert all(sql_answers(s["sqlPort"], banner.password) for s in servers)
    out = demo.text()
    for step in (
        "compute catalog: region demo, IDC demo, host type demo: created",
        "(Prepare host)",
        "uploaded the wheel",
        "creating cluster demo: task",
        "Update OB cluster status: done",
    ):
        assert step in out, out
    assert "taking" not in out
    auth = ("admin", banner.password)
    hosts = httpx.get(f"{banner.url}/api/v2/compute/hosts", auth=auth).json()["data"]["contents"]
    assert [(h["kind"], h["idcName"], h["typeName"]) for h in hosts] == [("LOCAL", "demo", "demo")]
    packages = httpx.get(f"{banner.url}/api/v2/software-packages", auth=auth).json()["data"]
    assert [p["fileName"] for p in packages["contents"]] == [locked_wheel().name]

    # The printed CLI commands: log in, then list the clusters.
    assert banner.cli["list"] == "obpilot cluster list"
    assert banner.cli["stop"].startswith("obpilot cluster stop demo -y")
    assert banner.cli["follow"] == "obpilot task watch $TASK"
    assert banner.cli["path"] == f'export PATH={Path(sys.executable).parent}:"$PATH"'
    cli_env = {**demo.environment, "OBPILOT_CLI_CONFIG": str(demo.home / "cli.toml")}
    script = "\n".join(
        ["set -e", banner.cli["path"], banner.cli["login"], banner.cli["list"] + " -o json", ""]
    )
    cli = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr + cli.stdout
    assert [c["name"] for c in json.loads(cli.stdout)["contents"]] == ["demo"]
    assert banner.password not in (demo.home / "cli.toml").read_text()
    pids = seekdb_pids(root)
    assert sorted(pids) == ["zone1-1", "zone2-1"]
    assert all(process_alive(pid) for pid in pids.values())

    # Ctrl-C: the API stops, the servers stay; a rerun serves them again as they are.
    assert demo.interrupt() == 0, demo.text()
    assert "keep running" in demo.text()
    assert all(process_alive(pid) for pid in pids.values())
    again = demo.start()
    assert again.password == banner.password
    assert again.commands == banner.commands
    assert "already running" not in demo.text()  # the cluster exists: nothing to start
    assert "registered already" in demo.text()
    assert seekdb_pids(root) == pids

    # The printed stop and follow commands, in a shell, as printed.
    script = f"set -e\n{banner.commands['stop']}\necho TASK=$TASK\n{banner.commands['follow']}\n"
    shell = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert shell.returncode == 0, shell.stderr + shell.stdout
    assert "event: end" in shell.stdout
    end = shell.stdout.split("event: end", 1)[1]
    assert '"name":"Stop OB cluster"' in end
    assert '"status":"SUCCESSFUL"' in end
    stopped = httpx.get(f"{banner.url}/api/v2/ob/clusters", auth=("admin", banner.password))
    assert stopped.json()["data"]["contents"][0]["status"] == "STOPPED"
    assert not any(process_alive(pid) for pid in pids.values())

    # --down while the demo serves: the cluster is deleted through its API, then it stops.
    serving = demo.process
    assert serving is not None
    down = demo.run("--down")
    assert down.returncode == 0, down.stderr + down.stdout
    assert "deleting cluster demo: task" in down.stdout
    assert "deleted cluster demo" in down.stdout
    assert f"stopped the serving obpilot demo (pid {serving.pid})" in down.stdout
    assert serving.wait(10) == 0
    assert demo.text().rstrip().endswith("obpilot stopped serving.")
    assert demo_processes(root) == []
    assert sorted(p.name for p in root.iterdir()) == ["admin-password"]
    assert not (root / "servers").exists()


def test_demo_down_after_the_demo_was_killed(demo: Demo) -> None:
    """The serving demo killed (SIGKILL): --down serves the API itself a moment and
    deletes the cluster through it; a rerun of the demo reuses the catalog, the host and
    the package, and the next --down finds nothing."""
    root = demo.home / "demo"
    banner = demo.start("--zones", "1")
    pids = seekdb_pids(root)
    assert len(pids) == 1
    demo.kill()
    assert all(process_alive(pid) for pid in pids.values())
    down = demo.run("--down")
    assert down.returncode == 0, down.stderr + down.stdout
    assert "deleted cluster demo" in down.stdout
    assert "serving obpilot demo" not in down.stdout
    assert not any(process_alive(pid) for pid in pids.values())
    assert demo_processes(root) == []
    assert sorted(p.name for p in root.iterdir()) == ["admin-password"]

    again = demo.start("--zones", "1")
    assert again.password == banner.password
    out = demo.text()
    assert "host type demo: registered already" in out
    assert "(this machine, LOCAL; id 1): reused" in out
    assert "has this wheel's sha1: reused" in out
    assert "uploaded" not in out
    assert demo.interrupt() == 0, out
    assert demo.run("--down").returncode == 0
    assert demo_processes(root) == []
    assert demo.run("--down").stdout.strip().startswith("nothing to remove")
    assert (root / "admin-password").read_text().strip() == banner.password
