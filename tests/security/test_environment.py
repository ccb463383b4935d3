"""Finding 17: the host agent, every server it starts locally, and local commands inherited
obpilot's whole environment, which may hold its admin password, secret key and metadb URL.
They get PATH, HOME, the locale and the time zone only."""

from __future__ import annotations

from pathlib import Path

import pytest

from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.protocol import LAUNCH

SECRETS = {
    "OBPILOT_ADMIN_PASSWORD": "admin-s3cret",
    "OBPILOT_SECRET_KEY": "key-s3cret",
    "OBPILOT_METADB_URL": "postgresql+psycopg://obpilot:db-s3cret@db/obpilot",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cret",
}


@pytest.fixture
def secret_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def environ_of(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


async def test_a_local_command_gets_no_secret(secret_environment: None) -> None:
    executor = LocalExecutor()
    try:
        result = await executor.run(["env"], step="env", time_limit=10, env={"EXTRA": "1"})
    finally:
        await executor.close()
    assert "EXTRA=1" in result.stdout
    assert "PATH=" in result.stdout
    for value in SECRETS.values():
        assert value not in result.stdout


async def test_the_agent_and_what_it_launches_get_no_secret(
    secret_environment: None, tmp_path: Path
) -> None:
    executor = LocalExecutor()
    dumped = tmp_path / "server.env"
    try:
        await executor.agent.call(
            LAUNCH,
            {
                "pid_file": str(tmp_path / "run" / "server.pid"),
                "home": str(tmp_path),
                "binaries": ["/bin/sh"],
                "port": 1,
                "other_ports": [],
                "argv": ["/bin/sh", "-c", f"env > {dumped}"],
                "env": {"TELEMETRY_ENABLED": "false"},
                "cwd": str(tmp_path),
                "console": str(tmp_path / "log" / "console.log"),
                "parent_wait": 10,
                "lock_wait": 0.1,
            },
            step="launch",
            time_limit=30,
        )
        agent_pid = executor.agent.pid
        assert agent_pid is not None
        agent = environ_of(agent_pid)
    finally:
        await executor.close()
    assert "PATH" in agent
    assert not set(SECRETS) & set(agent)
    launched = dumped.read_text()
    assert "TELEMETRY_ENABLED=false" in launched
    for value in SECRETS.values():
        assert value not in launched
