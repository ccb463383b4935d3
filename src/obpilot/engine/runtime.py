"""Builds this process's task engine from the settings (used by the app's lifespan)."""

from __future__ import annotations

from obpilot.db.engine import Database
from obpilot.engine.catalog import Catalog
from obpilot.engine.config import EngineConfig
from obpilot.engine.dispatch import Engine
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
    catalog: Catalog,
    secret_box: SecretBox,
    resources: object,
) -> Engine:
    """Starts the worker pool, reaper and log writer for `catalog`'s templates; handlers
    see `resources` as `ctx.resources`."""
    engine = Engine(
        database,
        engine_config(settings),
        catalog=catalog,
        secret_box=secret_box,
        resources=resources,
    )
    await engine.start()
    return engine
