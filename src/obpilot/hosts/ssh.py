"""Commands on a remote host over SSH (asyncssh): one pooled connection per host, key or
password authentication, connect and command timeouts, and a host key that must be the
one recorded when the host was added."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import re
import shlex
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

from obpilot.formats import printable
from obpilot.hosts.agent_link import AgentLink
from obpilot.hosts.executor import (
    CommandResult,
    ErrorTail,
    HostAuthenticationFailed,
    HostCommandTimeout,
    HostError,
    HostFileCopyFailed,
    HostKeyChanged,
    HostUnreachable,
    check_result,
)

# asyncssh (2.24) names cryptography's DSA key classes in its type annotations, and since
# cryptography 51 each of those names warns that DSA is deprecated: five lines on the stderr
# of every obpilot command, about an algorithm no obpilot host or credential uses. Only
# that warning is silenced, and only while asyncssh is imported; this is the one module that
# imports asyncssh.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning
    )
    import asyncssh

#: How much of a file one write to the channel carries.
COPY_CHUNK = 1 << 20

#: The oldest Python a host may have: obpilot's host agent is written for it.
MIN_HOST_PYTHON = (3, 7)
#: How much of what a host's python said instead of its version an error quotes.
PROBE_ANSWER_SHOWN = 200
#: Seconds after obpilot's own timeout at which the host kills a remote command.
REMOTE_KILL_DELAY = 1.0


@dataclass(frozen=True)
class SshCredential:
    """How to log in: a password, or a private key (OpenSSH or PEM text) with its
    optional passphrase. Secrets never appear in repr()."""

    username: str
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)

    @property
    def method(self) -> str:
        return "private key" if self.private_key else "password"


@dataclass(frozen=True)
class SshTarget:
    address: str
    port: int
    credential: SshCredential
    #: OpenSSH public key line (`ssh-ed25519 AAAA...`) recorded when the host was added;
    #: only `record_host_key` connects without one.
    host_key: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.credential.username}@{address}:{self.port}"


@dataclass(frozen=True)
class SshOptions:
    connect_timeout: float = 10.0
    keepalive_interval: float = 15.0
    #: Channels open at once on one connection; OpenSSH's MaxSessions defaults to 10.
    max_sessions: int = 8
    #: The Python 3 interpreter on remote hosts.
    python: str = "python3"


class UnreadablePrivateKey(ValueError):
    """A private key that cannot be read; the message names the problem, never the key."""


def check_private_key(key: str, passphrase: str | None) -> None:
    """Raises UnreadablePrivateKey unless `key` (OpenSSH or PEM) opens with `passphrase`."""
    try:
        asyncssh.import_private_key(key, passphrase)
    except (asyncssh.KeyImportError, ValueError) as error:
        # asyncssh's messages name the problem ("Incorrect passphrase", "Invalid PEM
        # private key"), never the key.
        raise UnreadablePrivateKey(str(error)) from None


def host_key_fingerprint(host_key: str) -> str:
    """`SHA256:...` as `ssh-keygen -l` prints it."""
    return str(asyncssh.import_public_key(host_key).get_fingerprint("sha256"))


def _connect_kwargs(target: SshTarget, options: SshOptions, *, trust_any_key: bool) -> Any:
    credential = target.credential
    kwargs: dict[str, Any] = {
        "host": target.address,
        "port": target.port,
        "username": credential.username,
        # Nothing from ~/.ssh, the agent or ssh_config: only what obpilot stores.
        "config": None,
        "agent_path": None,
        "connect_timeout": options.connect_timeout,
        "keepalive_interval": options.keepalive_interval,
        "keepalive_count_max": 3,
    }
    if trust_any_key:
        kwargs["known_hosts"] = None
    else:
        assert target.host_key is not None
        trusted = [asyncssh.import_public_key(target.host_key)]
        kwargs["known_hosts"] = (trusted, [], [])
    if credential.private_key:
        kwargs["client_keys"] = [
            asyncssh.import_private_key(credential.private_key, credential.passphrase)
        ]
        kwargs["password"] = None
        kwargs["preferred_auth"] = "publickey"
    else:
        kwargs["client_keys"] = None
        kwargs["password"] = credential.password or ""
        kwargs["preferred_auth"] = "password,keyboard-interactive"
    return kwargs


async def _offered_key(target: SshTarget, options: SshOptions) -> str:
    """The fingerprint the host offers now (to show next to the recorded one)."""
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(
                target.address,
                target.port,
                config=None,
                server_host_key_algs=[
                    asyncssh.import_public_key(target.host_key or "").algorithm.decode()
                ],
            ),
            options.connect_timeout,
        )
    except Exception:  # best effort: the refusal itself is what matters
        return "unknown"
    return str(key.get_fingerprint("sha256")) if key is not None else "unknown"


async def _open(
    target: SshTarget, options: SshOptions, *, step: str, trust_any_key: bool = False
) -> asyncssh.SSHClientConnection:
    if not trust_any_key and not target.host_key:
        raise HostKeyChanged(
            host=target.label,
            step=step,
            detail="no host key is recorded for this host; add the host again to record it",
        )
    try:
        kwargs = _connect_kwargs(target, options, trust_any_key=trust_any_key)
    except (asyncssh.KeyImportError, ValueError) as error:
        raise HostAuthenticationFailed(
            host=target.label, step=step, detail=f"the stored private key is unusable: {error}"
        ) from None
    try:
        # connect_timeout covers TCP, key exchange and authentication; the outer bound
        # is a guard against anything it misses.
        return await asyncio.wait_for(asyncssh.connect(**kwargs), options.connect_timeout + 5)
    except asyncssh.HostKeyNotVerifiable:
        recorded = host_key_fingerprint(target.host_key or "")
        offered = await _offered_key(target, options)
        raise HostKeyChanged(
            host=target.label,
            step=step,
            detail=(
                f"it offered {offered} but {recorded} was recorded when the host was added; "
                "refusing to connect (if the host was really reinstalled, add it again)"
            ),
        ) from None
    except asyncssh.PermissionDenied as error:
        raise HostAuthenticationFailed(
            host=target.label,
            step=step,
            detail=f"user {target.credential.username!r} with a {target.credential.method} "
            f"was refused ({error.reason or 'permission denied'})",
        ) from None
    except asyncssh.DisconnectError as error:
        raise HostUnreachable(
            host=target.label, step=step, detail=f"SSH connection closed: {error.reason}"
        ) from None
    except TimeoutError:
        raise HostUnreachable(
            host=target.label,
            step=step,
            detail=f"no SSH session within {options.connect_timeout:g} s",
        ) from None
    except OSError as error:
        why = os.strerror(error.errno) if error.errno else str(error)
        raise HostUnreachable(
            host=target.label,
            step=step,
            detail=f"cannot connect to {target.address} port {target.port}: {why}",
        ) from None


class SshExecutor:
    """One host, one pooled SSH connection (opened on first use, reopened when lost),
    at most `max_sessions` commands at once on it."""

    def __init__(self, target: SshTarget, options: SshOptions | None = None) -> None:
        self.target = target
        self.options = options or SshOptions()
        self._connection: asyncssh.SSHClientConnection | None = None
        self._connect_lock = asyncio.Lock()
        self._sessions = asyncio.Semaphore(self.options.max_sessions)
        self._agent = AgentLink(self)

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def python(self) -> str:
        return self.options.python

    @property
    def agent(self) -> AgentLink:
        """Runs on its own channel of the pooled connection, outside `max_sessions`."""
        return self._agent

    async def _connect(self, step: str) -> asyncssh.SSHClientConnection:
        async with self._connect_lock:
            if self._connection is None or self._connection.is_closed():
                self._connection = await _open(self.target, self.options, step=step)
            return self._connection

    async def _drop(self, connection: asyncssh.SSHClientConnection) -> None:
        if self._connection is connection:
            self._connection = None
        connection.close()

    async def run(
        self,
        argv: Sequence[str],
        *,
        step: str,
        time_limit: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> CommandResult:
        if not argv:
            raise ValueError("empty command")
        # sshd ignores most client environment variables, so `env` sets them instead.
        words = ["env", *(f"{key}={value}" for key, value in env.items()), *argv] if env else argv
        # OpenSSH refuses channel signals in many set-ups ("session signalling requires
        # privilege separation"), so the host itself bounds the command: coreutils
        # `timeout` kills it a moment after obpilot has given up on it.
        remote_limit = f"{time_limit + REMOTE_KILL_DELAY:g}"
        command = shlex.join(["timeout", "-s", "KILL", remote_limit, *words])
        async with self._sessions:
            connection, process = await self._create_process(command, step, text=True)
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(input), time_limit)
            except TimeoutError:
                await _abandon(process)
                raise HostCommandTimeout(
                    host=self.label,
                    step=step,
                    detail=f"{argv[0]} did not finish within {time_limit:g} s and was killed",
                ) from None
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as error:
                await self._drop(connection)
                raise HostUnreachable(
                    host=self.label, step=step, detail=f"connection lost while running: {error}"
                ) from None
            except BaseException:  # cancelled: do not leave the remote command running
                await _abandon(process)
                raise
        result = CommandResult(
            host=self.label,
            step=step,
            exit_status=process.exit_status if process.exit_signal is None else None,
            stdout=str(stdout or ""),
            stderr=str(stderr or ""),
        )
        return check_result(result) if check else result

    async def put_file(
        self, source: Path, destination: str, *, mode: int, step: str, time_limit: float
    ) -> None:
        # Through the command channel rather than SFTP: not every sshd offers SFTP.
        partial = f"{destination}.obpilot-part"
        script = (
            f"mkdir -p {shlex.quote(posixpath.dirname(destination))} && "
            f"cat > {shlex.quote(partial)} && chmod {mode:o} {shlex.quote(partial)} && "
            f"mv -f {shlex.quote(partial)} {shlex.quote(destination)}"
        )
        command = shlex.join(["timeout", "-s", "KILL", f"{time_limit + REMOTE_KILL_DELAY:g}"])
        async with self._sessions:
            connection, process = await self._create_process(
                f"{command} sh -c {shlex.quote(script)}", step, text=False
            )
            try:
                async with asyncio.timeout(time_limit):
                    with source.open("rb") as file:
                        while chunk := file.read(COPY_CHUNK):
                            process.stdin.write(chunk)
                            await process.stdin.drain()
                    process.stdin.write_eof()
                    result = await process.wait()
            except TimeoutError:
                await _abandon(process)
                raise HostCommandTimeout(
                    host=self.label,
                    step=step,
                    detail=f"copying {source} took over {time_limit:g} s",
                ) from None
            except (asyncssh.Error, OSError) as error:
                await self._drop(connection)
                raise HostFileCopyFailed(host=self.label, step=step, detail=str(error)) from None
        if result.exit_status != 0:
            stderr = printable((result.stderr or b"").decode(errors="replace").strip())
            raise HostFileCopyFailed(
                host=self.label,
                step=step,
                detail=f"exit status {result.exit_status}: {stderr[-2000:] or '(no output)'}",
            )

    async def open_pipe(self, argv: Sequence[str], *, step: str) -> SshPipe:
        _, process = await self._create_process(shlex.join(argv), step, text=False)
        return SshPipe(process)

    async def _create_process(
        self, command: str, step: str, *, text: bool
    ) -> tuple[asyncssh.SSHClientConnection, Any]:
        """Starts `command` on a channel of the pooled connection (a new connection if
        that one was lost)."""
        encoding = {"encoding": "utf-8", "errors": "replace"} if text else {"encoding": None}
        for attempt in (1, 2):
            connection = await self._connect(step)
            try:
                return connection, await connection.create_process(command, **encoding)
            except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, OSError) as error:
                # The command never started, so trying once more on a new connection
                # cannot run it twice.
                await self._drop(connection)
                if attempt == 2:
                    raise HostUnreachable(
                        host=self.label, step=step, detail=f"cannot open a session: {error}"
                    ) from None
        raise AssertionError("two attempts always return or raise")

    async def close(self) -> None:
        await self._agent.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.wait_closed(), 5)


class SshPipe:
    """A remote command talked to over its channel's stdin and stdout. When the channel
    or the connection closes, the command's stdin closes with it (the agent exits)."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process
        self._stderr = ErrorTail(process.stderr)

    async def send(self, data: bytes) -> None:
        self._process.stdin.write(data)
        await self._process.stdin.drain()

    async def receive_line(self) -> bytes:
        return await self._process.stdout.readline()

    def error_output(self) -> str:
        return self._stderr.text()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._process.stdin.write_eof()
        await _abandon(self._process)
        await self._stderr.close()


async def _abandon(process: asyncssh.SSHClientProcess[Any]) -> None:
    """Asks for a kill where the server allows channel signals, and closes the channel;
    the remote `timeout` wrapper makes sure the command ends either way."""
    with contextlib.suppress(Exception):
        process.kill()
    process.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait_closed(), 0.5)


#: The host key types obpilot asks for, one at a time, to find the one a fingerprint names.
PINNABLE_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)


async def host_key_named(
    target: SshTarget, options: SshOptions, fingerprint: str, *, step: str
) -> str:
    """The host key (OpenSSH public key line) that `target` offers and `fingerprint`
    (`SHA256:...`) names. Only key exchanges: nothing of the credential is sent, and a host
    that offers no such key is refused (HostKeyChanged, naming what it offered)."""
    offered: list[str] = []
    for key_type in PINNABLE_KEY_TYPES:
        try:
            key = await asyncio.wait_for(
                asyncssh.get_server_host_key(
                    target.address, target.port, config=None, server_host_key_algs=[key_type]
                ),
                options.connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise HostUnreachable(
                host=target.label,
                step=step,
                detail=f"cannot connect to {target.address} port {target.port}: {error}",
            ) from None
        except asyncssh.Error:  # the host has no key of this type
            continue
        if key is None:
            continue
        found = str(key.get_fingerprint("sha256"))
        if found == fingerprint:
            return key.export_public_key("openssh").decode().strip()
        offered.append(found)
    raise HostKeyChanged(
        host=target.label,
        step=step,
        detail=f"it offered {', '.join(offered) or 'no key obpilot knows'}, not {fingerprint}; "
        "no credential was sent to it",
    )


async def record_host_key(
    target: SshTarget, options: SshOptions, *, step: str, fingerprint: str | None = None
) -> str:
    """Connects once, checks that the credential logs in and that the host has a usable
    Python 3, and returns the host key (OpenSSH public key line) to record. Later
    connections accept only that key. With `fingerprint`, the credential goes only to a host
    presenting the key it names; without, whatever key the host offers is trusted (first
    use), which a private key may do: it proves itself without being sent."""
    if fingerprint is not None:
        pinned = await host_key_named(target, options, fingerprint, step=step)
        connection = await _open(replace(target, host_key=pinned), options, step=step)
    else:
        connection = await _open(target, options, step=step, trust_any_key=True)
    try:
        host_key = connection.get_server_host_key()
        if host_key is None:  # pragma: no cover - asyncssh always has it after kex
            raise HostUnreachable(host=target.label, step=step, detail="no host key offered")
        probe = "import sys; print('%d.%d' % sys.version_info[:2])"
        command = shlex.join([options.python, "-c", probe])
        try:
            completed = await asyncio.wait_for(
                connection.run(command, check=False), options.connect_timeout
            )
        except TimeoutError:
            raise HostCommandTimeout(
                host=target.label, step=step, detail=f"{options.python} did not answer"
            ) from None
        said = printable(str(completed.stdout or "").strip())
        if completed.exit_status != 0 or _python_version(said) < MIN_HOST_PYTHON:
            said = said or printable(str(completed.stderr or "").strip())
            raise HostError(
                host=target.label,
                step=step,
                detail=(
                    f"obpilot needs {options.python} >= "
                    f"{'.'.join(map(str, MIN_HOST_PYTHON))} on the host; got "
                    f"{said[:PROBE_ANSWER_SHOWN] or 'nothing'}"
                ),
            )
        return host_key.export_public_key("openssh").decode().strip()
    finally:
        connection.close()


def _python_version(said: str) -> tuple[int, ...]:
    """The version the probe printed (`3.11`); empty for anything else a host may say."""
    version = re.fullmatch(r"([0-9]+)\.([0-9]+)", said)
    return (int(version[1]), int(version[2])) if version else ()
