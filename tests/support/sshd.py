"""A real OpenSSH server for tests: `/usr/sbin/sshd` in the foreground on a loopback
port, with a host key and a client key generated into a temporary directory, public-key
login for the current user (root in CI) through that directory's authorized_keys, and
nothing read from /etc/ssh. Stopped by its pid.

    with SshServer(tmp_path) as sshd:
        sshd.port, sshd.host_key, sshd.client_key, sshd.username
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import asyncssh
import pytest

from tests.support.databases import free_port

SSHD = "/usr/sbin/sshd"


def _key_pair(directory: Path, name: str) -> tuple[Path, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = directory / name
    key.write_private_key(str(path))
    path.chmod(0o600)
    public = key.export_public_key("openssh").decode().strip()
    (directory / f"{name}.pub").write_text(public + "\n")
    return path, public


class SshServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.username = getpass.getuser()
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "sshd.log"

    @property
    def client_key(self) -> str:
        """The private key (OpenSSH text) authorised to log in."""
        return (self.directory / "client_key").read_text()

    @property
    def host_key(self) -> str:
        """The server's public host key line, as obpilot records it."""
        return self._host_public

    def start(self) -> SshServer:
        if not os.path.exists(SSHD):
            raise RuntimeError(f"{SSHD} is missing (run scripts/install-system-deps.sh)")
        self.directory.mkdir(parents=True, exist_ok=True)
        host_key_path = self.directory / "ssh_host_ed25519_key"
        if host_key_path.exists():  # a restart: the same host, so the same keys
            self._host_public = (self.directory / "ssh_host_ed25519_key.pub").read_text().strip()
            client_public = (self.directory / "client_key.pub").read_text().strip()
        else:
            host_key_path, self._host_public = _key_pair(self.directory, "ssh_host_ed25519_key")
            _, client_public = _key_pair(self.directory, "client_key")
        authorized = self.directory / "authorized_keys"
        authorized.write_text(client_public + "\n")
        authorized.chmod(0o600)
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key_path}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "MaxSessions 20",
                    "MaxStartups 50",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        # sshd insists on its privilege separation directory (systemd makes it at boot).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_for_banner()
        return self

    def _wait_for_banner(self, timeout: float = 15.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"sshd exited with {self._process.returncode}: {self.log_path.read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"sshd did not answer on 127.0.0.1:{self.port}")

    def cut_off(self) -> None:
        """The host drops off the network: sshd and every connection it serves end at once
        (SIGKILL by pid, children first), so established sessions break too."""
        if self._process is None:
            return
        for pid in _descendants(self._process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def sshd_available() -> bool:
    return os.path.exists(SSHD)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One sshd on a loopback port for the whole session; stopped by its pid at the end."""
    if not sshd_available():
        message = f"{SSHD} is not installed (run scripts/install-system-deps.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server
