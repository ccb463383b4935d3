"""Hosts to run on: this machine, and this machine again through a real sshd on a
loopback port (started once per session, stopped by its pid)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from obpilot.hosts.executor import HostExecutor
from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.ssh import SshCredential, SshExecutor, SshOptions, SshTarget
from tests.support.sshd import SshServer


@pytest.fixture(scope="session")
def ssh_target(sshd: SshServer) -> SshTarget:
    return SshTarget(
        address="127.0.0.1",
        port=sshd.port,
        credential=SshCredential(sshd.username, private_key=sshd.client_key),
        host_key=sshd.host_key,
    )


def make_executor(kind: str, request: pytest.FixtureRequest) -> HostExecutor:
    if kind == "local":
        return LocalExecutor()
    target: SshTarget = request.getfixturevalue("ssh_target")
    return SshExecutor(target, SshOptions(connect_timeout=10))


@pytest.fixture(scope="module", params=["local", "ssh"])
async def executor(request: pytest.FixtureRequest) -> AsyncIterator[HostExecutor]:
    """This machine, reached locally and over SSH in turn (shared by a module's tests)."""
    host = make_executor(str(request.param), request)
    yield host
    await host.close()
