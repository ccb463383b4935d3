"""Request bodies of the cluster, zone and server operations. Every body is optional: OCP
clients send none."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from obpilot.api.envelope import CamelModel


class StopOptions(CamelModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(default=False, description="Skip the clean stop: SIGKILL at once.")
    freeze_before_stop: bool = Field(
        default=False,
        description="Observer clusters: a minor freeze first, which shortens the next start.",
    )


class RestartOptions(StopOptions):
    pass


class StartOptions(CamelModel):
    model_config = ConfigDict(extra="forbid")
