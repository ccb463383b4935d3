"""The pool of host executors of one obpilot instance: one executor (so one SSH
connection) per host, reused by every subtask that acts on that host.

Built once per process (the app's lifespan, a worker, a CLI command) and closed at exit:

    access = HostAccess(SshOptions(connect_timeout=10))
    executor = access.executor(host.id, target)   # target: LocalTarget() or SshTarget(...)
    driver = driver_for(spec, executor)
    await driver.stop(log=subtask_log)
    await access.close()
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial

from obpilot.hosts.executor import HostExecutor, ProcessExit
from obpilot.hosts.local import LocalExecutor
from obpilot.hosts.ssh import SshExecutor, SshOptions, SshTarget, record_host_key
from obpilot.settings import Settings


@dataclass(frozen=True)
class LocalTarget:
    """This machine: commands run as obpilot's own children."""

    name: str = "local"
    python: str | None = None

    @property
    def label(self) -> str:
        return self.name


HostTarget = LocalTarget | SshTarget

#: Called with the host's key (its id) and a server process of it that has exited.
HostExitListener = Callable[[Hashable, ProcessExit], None]


class HostAccess:
    @classmethod
    def from_settings(cls, settings: Settings) -> HostAccess:
        return cls(
            SshOptions(
                connect_timeout=settings.ssh_connect_timeout,
                keepalive_interval=settings.ssh_keepalive_seconds,
                max_sessions=settings.ssh_max_sessions,
                python=settings.host_python,
            )
        )

    def __init__(self, ssh_options: SshOptions | None = None) -> None:
        self.ssh_options = ssh_options or SshOptions()
        self._executors: dict[Hashable, tuple[HostTarget, HostExecutor]] = {}
        self._retired: list[HostExecutor] = []
        self._exit_listeners: list[HostExitListener] = []

    def on_exit(self, listener: HostExitListener) -> None:
        """Calls `listener` with every exit that the agents of this pool's hosts report,
        from now on (hosts already pooled included)."""
        self._exit_listeners.append(listener)
        for key, (_, executor) in self._executors.items():
            self._forward_exits(key, executor, [listener])

    @staticmethod
    def _forward_exits(
        key: Hashable, executor: HostExecutor, listeners: list[HostExitListener]
    ) -> None:
        for listener in listeners:
            executor.agent.on_exit(partial(listener, key))

    def executor(self, key: Hashable, target: HostTarget) -> HostExecutor:
        """The pooled executor for `key` (normally the host id). A changed target (new
        address, credential or host key) replaces the old executor; the old
        connection is closed by `close()` or when the host is forgotten."""
        cached = self._executors.get(key)
        if cached is not None and cached[0] == target:
            return cached[1]
        if cached is not None:
            self._retired.append(cached[1])
        executor: HostExecutor
        if isinstance(target, LocalTarget):
            executor = LocalExecutor(name=target.name, python=target.python)
        else:
            executor = SshExecutor(target, self.ssh_options)
        self._executors[key] = (target, executor)
        self._forward_exits(key, executor, self._exit_listeners)
        return executor

    async def record_host_key(
        self, target: SshTarget, *, step: str = "record host key", fingerprint: str | None = None
    ) -> str:
        """See `obpilot.hosts.ssh.record_host_key`."""
        return await record_host_key(target, self.ssh_options, step=step, fingerprint=fingerprint)

    async def forget(self, key: Hashable) -> None:
        cached = self._executors.pop(key, None)
        if cached is not None:
            await cached[1].close()

    async def close(self) -> None:
        executors = [executor for _, executor in self._executors.values()]
        executors += self._retired
        self._executors.clear()
        self._retired = []
        for executor in executors:
            await executor.close()
