"""The pool of host executors: one per host, replaced when the host's target changes,
closed when the host is forgotten or the pool closes."""

from __future__ import annotations

from pathlib import Path

from obpilot.hosts.access import HostAccess, LocalTarget
from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.ssh import SshCredential, SshExecutor, SshOptions, SshTarget
from obpilot.settings import Settings


def test_a_local_target_gets_a_local_executor_named_after_it() -> None:
    executor = HostAccess().executor(1, LocalTarget(name="db1", python="/usr/bin/python3"))
    assert isinstance(executor, LocalExecutor)
    assert (executor.label, executor.python) == ("db1", "/usr/bin/python3")


def test_one_executor_per_host_while_its_target_stays_the_same() -> None:
    access = HostAccess()
    first = access.executor(1, LocalTarget())
    assert access.executor(1, LocalTarget()) is first
    assert access.executor(2, LocalTarget()) is not first


def test_ssh_hosts_get_the_ssh_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        ssh_connect_timeout=3,
        ssh_keepalive_seconds=5,
        ssh_max_sessions=2,
        host_python="python3.9",
    )
    target = SshTarget("10.0.0.5", 22, SshCredential("admin", password="x"), "ssh-ed25519 AAAA")
    executor = HostAccess.from_settings(settings).executor(1, target)  # no connection yet
    assert isinstance(executor, SshExecutor)
    assert executor.options == SshOptions(
        connect_timeout=3, keepalive_interval=5, max_sessions=2, python="python3.9"
    )


async def test_a_changed_target_replaces_the_executor_and_the_old_one_is_closed(
    ssh_target: SshTarget,
) -> None:
    access = HostAccess()
    old = access.executor(1, ssh_target)
    await old.run(["true"], step="connect", time_limit=10)
    assert isinstance(old, SshExecutor)
    assert old._connection is not None
    assert access.executor(1, LocalTarget()) is not old  # the host is this machine now
    assert old._connection is not None  # a command may still be running on it
    await access.close()
    assert old._connection is None


async def test_a_forgotten_host_is_closed_and_gets_a_new_executor(ssh_target: SshTarget) -> None:
    access = HostAccess()
    executor = access.executor(1, ssh_target)
    await executor.run(["true"], step="connect", time_limit=10)
    await access.forget(1)
    assert isinstance(executor, SshExecutor)
    assert executor._connection is None
    assert access.executor(1, ssh_target) is not executor
    await access.close()
