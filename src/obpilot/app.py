"""The application factory: wiring only; no work happens at import time."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import obpilot
import obpilot.schema
from obpilot.api.envelope import ErrorEnvelope
from obpilot.api.gate import RequestGate
from obpilot.api.handlers import install_error_handlers
from obpilot.api.middleware import Metrics, RequestContextMiddleware
from obpilot.compute.routes import router as compute_router
from obpilot.credentials.routes import router as credentials_router
from obpilot.db import migrate
from obpilot.db.engine import Database
from obpilot.engine import Catalog
from obpilot.engine.runtime import start_engine
from obpilot.flows import TEMPLATES
from obpilot.flows.common import FlowResources
from obpilot.flows.reconcile import Reconciler
from obpilot.hosts.access import HostAccess
from obpilot.iam.audit import AuditMiddleware
from obpilot.iam.bootstrap import start_iam
from obpilot.iam.deps import authenticate_api
from obpilot.iam.routes import router as iam_router
from obpilot.inventory.routes import router as inventory_router
from obpilot.lifecycle.routes import router as lifecycle_router
from obpilot.operations.routes import router as operations_router
from obpilot.packages.routes import router as packages_router
from obpilot.provision.routes import router as provision_router
from obpilot.settings import Settings
from obpilot.system.routes import router as system_router
from obpilot.system.unserved import router as unserved_router
from obpilot.takeover.routes import router as takeover_router
from obpilot.tasks.routes import router as tasks_router
from obpilot.tasks.stream import StreamHub
from obpilot.web import ConsoleRoute

ROUTERS = (
    system_router,
    iam_router,
    inventory_router,
    operations_router,
    tasks_router,
    credentials_router,
    takeover_router,
    compute_router,
    provision_router,
    packages_router,
    lifecycle_router,
    unserved_router,
)

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "Bad parameter (COM10001)"),
        (401, "Not authenticated (IAM10000, IAM10001, IAM10003, IAM10004)"),
        (403, "Not authorized (IAM11000, or the resource's own code such as OBE11065)"),
        (404, "Unknown resource"),
        (405, "Method not allowed"),
        (409, "Conflict"),
        (413, "Request body too large (COM10413)"),
        (415, "Unsupported media type: send JSON (COM10003)"),
        (429, "Too many requests: a login throttle or a stream cap (COM10429)"),
        (500, "Unexpected error"),
    )
}


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.home.mkdir(parents=True, exist_ok=True)
        if run_migrations:
            await asyncio.to_thread(migrate.upgrade, settings.resolved_metadb_url)
        database = Database(
            settings.resolved_metadb_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        app.state.database = database
        try:
            await start_iam(app, settings, database)
            catalog = Catalog()
            catalog.register(*TEMPLATES)
            catalog.register_modules(settings.extra_modules.split(","))
            resources = FlowResources(settings, app.state.host_access, app.state.secret_box)
            engine = await start_engine(
                settings,
                database,
                catalog=catalog,
                secret_box=app.state.secret_box,
                resources=resources,
            )
            app.state.engine = engine
            app.state.stream_hub = StreamHub(
                database,
                per_user=settings.streams_per_user,
                per_instance=settings.streams_per_instance,
                poll_seconds=min(1.0, settings.engine_poll_seconds),
            )
            reconciler = Reconciler(database, resources)
            app.state.reconciler = reconciler
            reconciler.follow_exits()
            periodic = (
                asyncio.create_task(reconciler.run(settings.reconcile_interval_seconds))
                if settings.reconcile_interval_seconds > 0
                else None
            )
            # What start-up made lives as long as the process: out of the collector's
            # sight (garbage collected first), a full collection costs a request tens of ms
            # instead of hundreds.
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                if periodic is not None:
                    periodic.cancel()
                app.state.stream_hub.close()
                await engine.stop()
        finally:
            await app.state.host_access.close()
            await database.dispose()

    app = FastAPI(
        title="obpilot",
        version=obpilot.__version__,
        description="OCP-compatible control plane for OceanBase clusters (OCP REST API v2).",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        dependencies=[Depends(authenticate_api)],
        # A redirect would be answered before authentication, outside the envelope, to an
        # address built from the client's Host header: a wrong path is a 404 instead.
        redirect_slashes=False,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.host_access = HostAccess.from_settings(settings)  # pooled SSH connections
    install_error_handlers(app)
    app.add_middleware(RequestGate, settings=settings)  # inside the audit: refusals are recorded
    # Inside the request context: it needs the traceId. The routes name the action of a
    # request that the gate refused before routing.
    app.add_middleware(
        AuditMiddleware, routes=[route for router in ROUTERS for route in router.routes]
    )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        server_address=settings.server_address,
    )
    for router in ROUTERS:
        app.include_router(router)
    # Last: the console's catch-all serves the built front end outside /api (obpilot.web).
    app.router.routes.append(ConsoleRoute())
    return app
