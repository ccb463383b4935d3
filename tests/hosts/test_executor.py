"""Running commands on a host, locally and over SSH, and every way that can fail."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncssh
import pytest

from obpilot.errors import (
    HostAuthenticationFailed,
    HostCommandFailed,
    HostCommandTimeout,
    HostError,
    HostKeyChanged,
    HostUnreachable,
)
from obpilot.hosts.executor import HostExecutor
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


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited


async def _gone(pid: int, within: float = 10.0) -> bool:
    """True once /proc shows no live process `pid`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


class TestBothExecutors:
    async def test_output_exit_status_stdin_and_environment(self, executor: HostExecutor) -> None:
        result = await executor.run(
            ["sh", "-c", 'read line; echo "got $line $GREETING"; echo warn >&2; exit 3'],
            step="echo",
            time_limit=10,
            input="it\n",
            env={"GREETING": "hello world"},
            check=False,
        )
        assert (result.exit_status, result.stdout, result.stderr) == (
            3,
            "got it hello world\n",
            "warn\n",
        )
        assert result.host == executor.label

    async def test_a_failed_command_names_host_step_status_and_stderr(
        self, executor: HostExecutor
    ) -> None:
        with pytest.raises(HostCommandFailed) as caught:
            await executor.run(
                ["sh", "-c", "echo 'no such file' >&2; exit 2"], step="read config", time_limit=10
            )
        message = caught.value.message
        assert executor.label in message
        assert "read config" in message
        assert "exit status 2" in message
        assert "no such file" in message
        assert caught.value.exit_status == 2

    async def test_a_missing_program_fails_like_a_shell_would(self, executor: HostExecutor) -> None:
        result = await executor.run(
            ["/nonexistent/obpilot-test"], step="run", time_limit=10, check=False
        )
        assert result.exit_status == 127

    async def test_a_command_that_outlives_its_time_limit_is_killed(
        self, executor: HostExecutor, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "sleeper.pid"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(HostCommandTimeout) as caught:
            await executor.run(
                ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
                step="wait forever",
                time_limit=1,
            )
        assert loop.time() - started < 10
        assert "wait forever" in caught.value.message
        assert "timed out" in caught.value.message
        assert await _gone(int(pid_file.read_text()))

    async def test_commands_run_concurrently_on_one_host(self, executor: HostExecutor) -> None:
        results = await asyncio.gather(
            *(
                executor.run(["sh", "-c", f"sleep 0.2; echo {n}"], step="n", time_limit=30)
                for n in range(12)
            )
        )
        assert [r.stdout.strip() for r in results] == [str(n) for n in range(12)]


class TestSsh:
    async def test_the_connection_is_pooled(self, ssh_target: SshTarget) -> None:
        executor = SshExecutor(ssh_target)
        try:
            first = await executor.run(["sh", "-c", "echo $PPID"], step="a", time_limit=10)
            connection = executor._connection
            await executor.run(["true"], step="b", time_limit=10)
            assert executor._connection is connection is not None
            assert first.ok
        finally:
            await executor.close()

    async def test_a_lost_connection_is_reopened(self, ssh_target: SshTarget) -> None:
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

    async def test_recording_the_host_key(self, sshd: SshServer, ssh_target: SshTarget) -> None:
        unrecorded = SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential)
        key = await record_host_key(unrecorded, SshOptions(), step="add host")
        assert key == sshd.host_key
        assert host_key_fingerprint(key).startswith("SHA256:")

    async def test_a_changed_host_key_is_refused(self, ssh_target: SshTarget) -> None:
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh")
        target = SshTarget(
            ssh_target.address, ssh_target.port, ssh_target.credential, other.decode()
        )
        executor = SshExecutor(target)
        with pytest.raises(HostKeyChanged) as caught:
            await executor.run(["true"], step="status", time_limit=10)
        message = caught.value.message
        assert target.label in message
        assert "status" in message
        assert host_key_fingerprint(ssh_target.host_key or "") in message  # what it offers
        assert host_key_fingerprint(other.decode()) in message  # what was recorded

    async def test_no_recorded_host_key_is_refused(self, ssh_target: SshTarget) -> None:
        executor = SshExecutor(
            SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential)
        )
        with pytest.raises(HostKeyChanged, match="no host key is recorded"):
            await executor.run(["true"], step="status", time_limit=10)

    async def test_a_wrong_client_key_fails_authentication(self, ssh_target: SshTarget) -> None:
        stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
        credential = SshCredential(ssh_target.credential.username, private_key=stranger)
        executor = SshExecutor(
            SshTarget(ssh_target.address, ssh_target.port, credential, ssh_target.host_key)
        )
        with pytest.raises(HostAuthenticationFailed) as caught:
            await executor.run(["true"], step="status", time_limit=10)
        assert "private key was refused" in caught.value.message
        assert caught.value.step == "status"

    async def test_a_wrong_password_fails_authentication(self, ssh_target: SshTarget) -> None:
        credential = SshCredential(ssh_target.credential.username, password="not-the-password")
        executor = SshExecutor(
            SshTarget(ssh_target.address, ssh_target.port, credential, ssh_target.host_key)
        )
        with pytest.raises(HostAuthenticationFailed, match="with a password was refused"):
            await executor.run(["true"], step="status", time_limit=10)

    async def test_a_host_on_a_closed_port_is_unreachable(self, ssh_target: SshTarget) -> None:
        port = free_port()  # nothing listens there
        target = SshTarget("127.0.0.1", port, ssh_target.credential, ssh_target.host_key)
        with pytest.raises(HostUnreachable) as caught:
            await SshExecutor(target).run(["true"], step="status", time_limit=10)
        assert f"127.0.0.1:{port}" in caught.value.message
        assert "refused" in caught.value.message.lower()

    async def test_a_host_that_never_answers_times_out_connecting(
        self, ssh_target: SshTarget
    ) -> None:
        # A listener that accepts TCP but never speaks SSH.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            port = silent.getsockname()[1]
            target = SshTarget("127.0.0.1", port, ssh_target.credential, ssh_target.host_key)
            executor = SshExecutor(target, SshOptions(connect_timeout=1))
            with pytest.raises(HostUnreachable, match="no SSH session within 1 s"):
                await executor.run(["true"], step="status", time_limit=10)

    async def test_record_host_key_needs_python3_on_the_host(self, ssh_target: SshTarget) -> None:
        target = SshTarget(ssh_target.address, ssh_target.port, ssh_target.credential)
        with pytest.raises(HostError, match=r"needs no-such-python3 >= 3\.7"):
            await record_host_key(target, SshOptions(python="no-such-python3"), step="add host")

    async def test_secrets_stay_out_of_repr(self, ssh_target: SshTarget) -> None:
        credential = SshCredential("root", password="hunter2-secret")
        assert "hunter2" not in repr(SshTarget("10.0.0.1", 22, credential))
        assert "PRIVATE KEY" not in repr(ssh_target)
        assert os.environ.get("SSH_AUTH_SOCK") is None or "agent" not in repr(ssh_target)
