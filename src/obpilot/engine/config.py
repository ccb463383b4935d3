"""How one instance's task engine runs: its name, pool size, leases and intervals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    # This instance's name, shown as `executor`. Unique among live instances and the same
    # across restarts: a restarted instance takes back its previous boot's subtasks at once,
    # so two live processes of one name would take each other's.
    executor: str
    workers: int = 8  # subtasks run at once by this instance; 0: no worker pool
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 2.0
    cancel_grace_seconds: float = 5.0
    drain_seconds: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise ValueError("the heartbeat interval must be positive and shorter than the lease")
        if self.poll_seconds <= 0:
            raise ValueError("the poll interval must be positive")

    @property
    def lease_margin(self) -> float:
        """How long a run may go on without a renewal: stop before others may reap it."""
        return self.lease_seconds - max(0.5, self.lease_seconds * 0.1)
