"""Per-request plumbing as pure ASGI (no buffering, so streams pass through): traceId,
timing, Prometheus metrics, the request log line, and the last-resort 500."""

from __future__ import annotations

import time
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obpilot.api.envelope import (
    new_trace_id,
    request_started_var,
    server_address_var,
    trace_id_var,
)
from obpilot.api.handlers import unexpected_response
from obpilot.logging import get_logger

log = get_logger("obpilot.access")

TRACE_HEADER = "X-Trace-Id"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "obpilot_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "obpilot_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


def _route_template(scope: Scope) -> str:
    """The matched route's path template (set in the scope by the router), so that metrics
    are labelled per route, not per id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, server_address: str) -> None:
        self.app = app
        self.metrics = metrics
        self.server_address = server_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        trace_id = new_trace_id()
        trace_token = trace_id_var.set(trace_id)
        started_token = request_started_var.set(started)
        server_token = server_address_var.set(self.server_address)
        structlog.contextvars.bind_contextvars(traceId=trace_id)
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                headers = list(message.get("headers", []))
                headers.append((TRACE_HEADER.lower().encode(), trace_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        except Exception:
            log.exception("unhandled error", path=scope["path"])
            if not state["started"]:
                await unexpected_response()(scope, receive, send_with_trace)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(state["status"])).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=state["status"],
                durationMs=round(elapsed * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("traceId")
            trace_id_var.reset(trace_token)
            request_started_var.reset(started_token)
            server_address_var.reset(server_token)
