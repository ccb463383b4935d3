"""Builds this process's task engine from the settings (used by the app's lifespan)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from obpilot.db.engine import Database
from obpilot.engine.config import EngineConfig
from obpilot.engine.dispatch import Engine
from obpilot.engine.subtask import import_modules
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        executor=settings.executor_name,
        workers=settings.engine_workers,
        lease_seconds=settings.engine_lease_seconds,
        heartbeat_seconds=settings.engine_heartbeat_seconds,
        poll_seconds=settings.engine_poll_seconds,
        cancel_grace_seconds=settings.engine_cancel_grace_seconds,
        drain_seconds=settings.engine_drain_seconds,
    )


async def start_engine(
    settings: Settings,
    database: Database,
    *,
    secret_box: SecretBox,
    resources: Mapping[str, Any] | None = None,
) -> Engine:
    """Imports OBPILOT_EXTRA_MODULES, then starts the worker pool, reaper and log writer.
    Handlers see `resources` (plus `settings` and `secret_box`) as `ctx.resources`."""
    import_modules(settings.extra_modules.split(","))
    engine = Engine(
        database,
        engine_config(settings),
        secret_box=secret_box,
        resources={"settings": settings, "secret_box": secret_box, **(resources or {})},
    )
    await engine.start()
    return engine
