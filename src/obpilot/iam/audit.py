"""The audit log's recorder: a pure ASGI middleware that writes one `audit_event` row for
every write call (POST/PUT/PATCH/DELETE) on /api/**, successful or not (refused by the
request gate, or failed with an unexpected error), and for every request whose credentials
were refused. Login attempts are POSTs, so each one is recorded.

The row is written before the response starts, so a client that saw an answer can rely on
the event being there. It runs inside the request-context middleware, so the traceId is the
response's, and outside the request gate, so the gate's refusals are recorded too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obpilot.api.envelope import trace_id_var
from obpilot.errors import Unexpected
from obpilot.iam import service
from obpilot.iam.deps import client_address
from obpilot.iam.models import AuditEvent
from obpilot.iam.permissions import Principal
from obpilot.logging import get_logger

log = get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_RESOURCE = 512


def _action(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The route's endpoint name (e.g. `stop_cluster`), which routing put in the scope; for
    a request refused before routing, the name of the route it was meant for."""
    endpoint = scope.get("endpoint") or _intended_endpoint(scope, routes)
    return str(getattr(endpoint, "__name__", "unknown"))[:128]


def _intended_endpoint(scope: Scope, routes: Sequence[BaseRoute]) -> object:
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return child_scope.get("endpoint")
    return None


def _error_code(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code)[:32] if code is not None else None


class AuditMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        held: list[Message] = []
        recorded = False

        async def send_after_audit(message: Message) -> None:
            nonlocal recorded
            if recorded:
                await send(message)
                return
            if message["type"] == "http.response.start":
                held.append(message)
                return
            if message["type"] == "http.response.body" and held:
                recorded = True
                status = int(held[0]["status"])
                if self._wanted(scope, state):
                    body = message.get("body", b"") if not message.get("more_body") else b""
                    await self._record(
                        scope, state, status, _error_code(body) if status >= 400 else None
                    )
                await send(held.pop())
            await send(message)

        try:
            await self.app(scope, receive, send_after_audit)
        except Exception:
            # The request-context middleware answers the 500; the call is recorded first.
            if not recorded and self._wanted(scope, state):
                await self._record(scope, state, Unexpected.status_code, Unexpected.code)
            raise

    @staticmethod
    def _wanted(scope: Scope, state: dict[str, Any]) -> bool:
        return scope["method"] in WRITE_METHODS or bool(state.get("authentication_failed"))

    async def _record(
        self, scope: Scope, state: dict[str, Any], status: int, error_code: str | None
    ) -> None:
        principal = state.get("principal")
        action = (
            "authenticate" if scope["method"] not in WRITE_METHODS else _action(scope, self.routes)
        )
        event = AuditEvent(
            user_id=principal.id if isinstance(principal, Principal) else None,
            username=(
                principal.username
                if isinstance(principal, Principal)
                else state.get("attempted_username")
            ),
            auth_method=principal.method if isinstance(principal, Principal) else None,
            action=action,
            method=scope["method"][:8],
            resource=scope["path"][:MAX_RESOURCE],
            source_address=(client_address(Request(scope)) or "")[:64] or None,
            result="SUCCESS" if status < 400 else "FAILURE",
            status=status,
            error_code=error_code,
            trace_id=trace_id_var.get(),
        )
        try:
            database = scope["app"].state.database
            async with database.transaction(write=True) as session:
                await service.record_audit_event(session, event=event)
        except Exception:
            # The call itself has happened; losing its audit row must not hide its answer.
            log.exception("could not write the audit event", action=action, path=scope["path"])
