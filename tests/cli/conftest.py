"""A real `obpilot serve` with a cluster of three real seekdb servers (one zone each),
taken over through the API, shared by the CLI tests of a session; and the CLI run the way
a user runs it (CliRunner, each invocation with its own profile file)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from obpilot.cli.main import build_app
from obpilot.cli.profiles import ProfileStore
from obpilot.hosts.local import LocalExecutor
from tests.cli.fake_api import FakeApi, serve
from tests.support.fleet import Fleet
from tests.support.server import ADMIN_PASSWORD, ServerProcess

ADMIN = ("admin", ADMIN_PASSWORD)
APP = build_app()


@dataclass
class Stack:
    server: ServerProcess
    fleet: Fleet
    cluster_id: int

    @property
    def url(self) -> str:
        return self.server.base_url

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """An admin call; the answer's data."""
        response = httpx.request(method, self.url + path, auth=ADMIN, timeout=60, **kwargs)
        answer = response.json()
        assert answer["successful"], answer
        return answer.get("data")

    def wait_task(self, task_id: int, within: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            task: dict[str, Any] = self.api("GET", f"/api/v2/tasks/instances/{task_id}")
            if task["status"] != "RUNNING" or time.monotonic() > deadline:
                return task
            time.sleep(0.2)


def _take_over(stack_server: ServerProcess, fleet: Fleet) -> int:
    def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, stack_server.base_url + path, auth=ADMIN, json=body, timeout=60
        )
        answer = response.json()
        assert answer["successful"], answer
        return answer["data"]

    host = call(
        "POST",
        "/api/v2/compute/hosts",
        {"name": "local", "innerIpAddress": "127.0.0.1", "kind": "LOCAL"},
    )
    body = {
        "name": "demo",
        "obClusterId": 1,
        "zones": [
            {
                "name": f"zone{i + 1}",
                "servers": [
                    {
                        "hostId": host["id"],
                        "kind": "seekdb",
                        "sqlPort": server.port,
                        "homePath": str(server.home),
                    }
                ],
            }
            for i, server in enumerate(fleet.servers)
        ],
    }
    task = call("POST", "/api/v2/ob/clusters/takeOver", body)
    stack = Stack(stack_server, fleet, 0)
    final = stack.wait_task(task["id"])
    assert final["status"] == "SUCCESSFUL", final
    return int(task["cluster"]["id"])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("cli-stack")
    fleet = Fleet(root / "fleet", 3)

    async def start() -> None:
        await fleet.ensure_running()
        await fleet.executor.close()

    async def stop() -> None:
        fleet.executor = LocalExecutor()  # the first one belonged to the first event loop
        await fleet.stop_all()

    asyncio.run(start())
    server = ServerProcess(root / "home")
    try:
        server.start()
        yield Stack(server, fleet, _take_over(server, fleet))
    finally:
        server.stop()
        asyncio.run(stop())


@dataclass
class Cli:
    """`obpilot ...` in this process, with its own profile file."""

    config: Path

    def __call__(self, *args: str, input: str | None = None) -> Result:
        # Not a terminal, and NO_COLOR unset: no colour all the same.
        env: dict[str, str | None] = {
            "OBPILOT_CLI_CONFIG": str(self.config),
            "NO_COLOR": None,
            "OBPILOT_PROFILE": None,
        }
        return CliRunner().invoke(APP, list(args), input=input, env=env)

    def login(self, stack: Stack, user: str = "admin", password: str = ADMIN_PASSWORD) -> Result:
        result = self(
            "login", "--url", stack.url, "--user", user, "--password-stdin", input=password + "\n"
        )
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI with a profile file of its own; its logins' access keys are revoked after
    the test (a user may hold 5)."""
    os.environ.pop("OBPILOT_PROFILE", None)
    runner = Cli(tmp_path / "cli" / "cli.toml")
    yield runner
    for name in ProfileStore.load(runner.config).profiles:
        runner("logout", "--profile", name)


@pytest.fixture
def fake(cli: Cli) -> Iterator[FakeApi]:
    """A scripted API (tests/cli/fake_api.py) that `cli`'s current profile talks to, for the
    commands whose server routes are not written yet."""
    for api in serve():
        api.profile(cli.config)
        yield api
