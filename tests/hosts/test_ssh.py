"""What only the SSH executor does, against a real sshd on a loopback port: one pooled
connection, reopened when lost; host keys recorded once and enforced; every way of
failing to log in or to connect."""

from __future__ import annotations

import asyncio
import os
import socket

import asyncssh
import pytest

from obpilot.errors import HostAuthenticationFailed, HostError, HostKeyChanged, HostUnreachable
from obpilot.hosts.ssh import (
    SshCredential,
    SshExecutor,
    SshOptions,
    SshTarget,
    host_key_fingerprint,
    record_host_key,
)
from tests.support.databases import free_port
from tests.support.sshd import SshServer


async def test_the_connection_is_pooled(ssh_target: SshTarget) -> None:
    executor = SshExecutor(ssh_target)
    try:
        first = await executor.run(["sh", "-c", "echo $PPID"], step="a", time_limit=10)
        connection = executor._connection
        await executor.run(["true"], step="b", time_limit=10)
        assert executor._connection is connection is not None
        assert first.ok
    finally:
        await executor.close()


async def test_a_lost_connection_is_reopened(ssh_target: SshTarget) -> None:
    executor = SshExecutor(ssh_target)
    try:
        await executor.run(["true"], step="a", time_limit=10)
        assert executor._connection is not None
        executor._connection.abort()
        await asyncio.sleep(0.1)
        result = await executor.run(["echo", "again"], step="b", time_limit=10)
        assert result.stdout == "again\n"
    finally:
        await executor.close()


async def test_recording_the_host_key(sshd: SshServer, ssh_target: SshTarget) -> None:
    unrecorded = SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential)
    key = await record_host_key(unrecorded, SshOptions(), step="add host")
    assert key == sshd.host_key
    assert host_key_fingerprint(key).startswith("SHA256:")


async def test_a_changed_host_key_is_refused(ssh_target: SshTarget) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh")
    target = SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential, other.decode())
    executor = SshExecutor(target)
    with pytest.raises(HostKeyChanged) as caught:
        await executor.run(["true"], step="status", time_limit=10)
    message = caught.value.message
    assert target.label in message
    assert "status" in message
    assert host_key_fingerprint(ssh_target.host_key or "") in message  # what it offers
    assert host_key_fingerprint(other.decode()) in message  # what was recorded


async def test_no_recorded_host_key_is_refused(ssh_target: SshTarget) -> None:
    executor = SshExecutor(SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential))
    with pytest.raises(HostKeyChanged, match="no host key is recorded"):
        await executor.run(["true"], step="status", time_limit=10)


async def test_a_wrong_client_key_fails_authentication(ssh_target: SshTarget) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    credential = SshCredential(ssh_target.credential.username, private_key=stranger)
    executor = SshExecutor(
        SshTarget(ssh_target.address, ssh_target.port, credential, ssh_target.host_key)
    )
    with pytest.raises(HostAuthenticationFailed) as caught:
        await executor.run(["true"], step="status", time_limit=10)
    assert "private key was refused" in caught.value.message
    assert caught.value.step == "status"


async def test_a_wrong_password_fails_authentication(ssh_target: SshTarget) -> None:
    credential = SshCredential(ssh_target.credential.username, password="not-the-password")
    executor = SshExecutor(
        SshTarget(ssh_target.address, ssh_target.port, credential, ssh_target.host_key)
    )
    with pytest.raises(HostAuthenticationFailed, match="with a password was refused"):
        await executor.run(["true"], step="status", time_limit=10)


async def test_a_host_on_a_closed_port_is_unreachable(ssh_target: SshTarget) -> None:
    port = free_port()  # nothing listens there
    target = SshTarget("127.0.0.1", port, ssh_target.credential, ssh_target.host_key)
    with pytest.raises(HostUnreachable) as caught:
        await SshExecutor(target).run(["true"], step="status", time_limit=10)
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "refused" in caught.value.message.lower()


async def test_a_host_that_never_answers_times_out_connecting(ssh_target: SshTarget) -> None:
    # A listener that accepts TCP but never speaks SSH.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        target = SshTarget("127.0.0.1", port, ssh_target.credential, ssh_target.host_key)
        executor = SshExecutor(target, SshOptions(connect_timeout=1))
        with pytest.raises(HostUnreachable, match="no SSH session within 1 s"):
            await executor.run(["true"], step="status", time_limit=10)


async def test_record_host_key_needs_python3_on_the_host(ssh_target: SshTarget) -> None:
    target = SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential)
    with pytest.raises(HostError, match=r"needs no-such-python3 >= 3\.7"):
        await record_host_key(target, SshOptions(python="no-such-python3"), step="add host")


async def test_secrets_stay_out_of_repr(ssh_target: SshTarget) -> None:
    credential = SshCredential("root", password="hunter2-secret")
    assert "hunter2" not in repr(SshTarget("10.0.0.1", 22, credential))
    assert "PRIVATE KEY" not in repr(ssh_target)
    assert os.environ.get("SSH_AUTH_SOCK") is None or "agent" not in repr(ssh_target)


def test_labels_bracket_an_ipv6_address() -> None:
    credential = SshCredential("admin", password="x")
    assert SshTarget("::1", 2222, credential).label == "admin@[::1]:2222"
    assert SshTarget("10.0.0.5", 22, credential).label == "admin@10.0.0.5:22"
    assert credential.method == "password"
    assert SshCredential("admin", private_key="KEY").method == "private key"
