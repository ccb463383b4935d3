"""Service information and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field

import obpilot
from obpilot.api.envelope import CamelModel, Envelope, ok

router = APIRouter()


class InfoOut(CamelModel):
    name: str = "obpilot"
    version: str
    metadb_dialect: str = Field(description="sqlite, postgresql or mysql.")
    address: str = Field(description="host:port of this instance.")


@router.get("/api/v2/info", tags=["system"], summary="Service information (no authentication)")
async def info(request: Request) -> Envelope[InfoOut]:
    return ok(
        InfoOut(
            version=obpilot.__version__,
            metadb_dialect=request.app.state.database.dialect,
            address=request.app.state.settings.server_address,
        )
    )


@router.get("/metrics", tags=["system"], summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
