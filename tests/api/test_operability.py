from __future__ import annotations

import json
import logging

import httpx
import pytest
import structlog

from obpilot.logging import configure_logging


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/api/v2/ob/clusters/77")
    await client.get("/api/v2/ob/clusters/78")
    text = (await client.get("/metrics")).text
    line = 'obpilot_http_requests_total{method="GET",route="/api/v2/ob/clusters/{id}",status="404"}'
    assert f"{line} 2.0" in text
    assert "obpilot_http_request_duration_seconds_bucket" in text


async def test_json_log_lines_carry_the_trace_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt="json", level="INFO")
    try:
        response = await client.get("/api/v2/ob/clusters/5")
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    trace_id = response.json()["traceId"]
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines, lines
    assert all(line["traceId"] == trace_id for line in request_lines)
    assert request_lines[-1]["status"] == 404
