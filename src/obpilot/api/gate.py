"""The request gate: what a request must pass before any route runs or its body is parsed,
as pure ASGI. Request bodies are read here, capped, and replayed to the application;
responses pass through untouched, so streams stream.

Before that, the server's connections (`HeadTimeoutProtocol`) must send each request head in
time. Then, in this order, each refusal in the OCP envelope:

1. a write on /api/** that a browser sent from another site: 403. obpilot accepts HTTP
   Basic, which browsers remember and would attach to a forged cross-site form post;
2. a declared body over the limit: 413, before a byte of it is read;
3. a caller of /api/** (except the public routes) who is not authenticated: 401, so an
   anonymous body is never read. An AK/SK signature covers the body: that is read first;
4. a write whose body is not JSON (a form, on the login route only): 415;
5. a body that grows over the limit while it streams in: 413, cut off there.

A package upload (`PACKAGE_UPLOAD_ROUTE`, multipart/form-data) has its own, larger limit and
is not read here: it streams on to its route, counted, and is cut off past the limit. A
signed upload declares its body's MD5 in a Content-MD5 header: the signature is checked
over that digest before the body is read, and the body against it as it streams in (a
body that does not match fails the upload with a 401, and nothing is kept).
"""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from obpilot.api.handlers import error_response
from obpilot.errors import (
    CrossSiteWrite,
    NotAuthenticated,
    ObpilotError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from obpilot.iam.authentication import declared_md5
from obpilot.iam.deps import PUBLIC_ROUTES, authenticate
from obpilot.iam.signatures import SCHEME
from obpilot.settings import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_ROUTE = ("POST", "/api/v2/iam/login")
PACKAGE_UPLOAD_ROUTE = ("POST", "/api/v2/software-packages")
MULTIPART_TYPE = "multipart/form-data"
JSON_TYPE = "application/json"
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


def _signed(scope: Scope) -> bool:
    """An AK/SK signature, which covers the body (read as `authenticate` reads it)."""
    return (_header(scope, b"authorization") or "").partition(" ")[0] == SCHEME


def _authority(scheme: str, netloc: str) -> str | None:
    """`host:port`, the port made explicit (80 or 443 by the scheme), to compare addresses."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return f"{parts.hostname}:{port}" if parts.hostname else None


class RequestGate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.advertised_address = settings.server_address
        self.max_body_bytes = settings.max_body_bytes
        self.max_login_body_bytes = settings.max_login_body_bytes
        self.max_package_bytes = settings.max_package_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            admitted = await self._admit(scope, receive)
        except ObpilotError as error:
            headers = dict(getattr(error, "headers", None) or {})
            if _has_body(scope):
                # The body may be unread: the client's connection cannot carry another
                # request, and reading the rest only to discard it is what the limit avoids.
                headers["Connection"] = "close"
            await error_response(error, headers=headers)(scope, receive, send)
            return
        if admitted is not None:  # None: the client left before its body was in
            await self.app(scope, admitted, send)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive | None:
        """The `receive` the application gets (replaying the body read here), or a refusal."""
        route = (scope["method"], scope["path"])
        on_api = scope["path"].startswith("/api/")
        if on_api and scope["method"] in WRITE_METHODS:
            self._refuse_cross_site(scope)
        has_body = _has_body(scope)
        streamed = route == PACKAGE_UPLOAD_ROUTE
        signed = _signed(scope)
        if route == LOGIN_ROUTE:
            limit = self.max_login_body_bytes
        else:
            limit = self.max_package_bytes if streamed else self.max_body_bytes
        if has_body:
            _refuse_declared_length(scope, limit)
        body: bytes | None = None
        declared: str | None = None
        if on_api and route not in PUBLIC_ROUTES:
            if signed and not streamed:  # even an empty body: the app must still receive it
                body = await _read_body(scope, receive, limit)
                if body is None:
                    return None
                await authenticate(Request(scope, _replay(body, receive)))
            else:
                request = Request(scope, receive)
                if signed:
                    declared = _declared_md5(scope)
                    request.state.declared_body_md5 = declared
                await authenticate(request)
        if has_body and scope["method"] in WRITE_METHODS:
            _refuse_media_type(scope, route)
        if streamed:
            return _counted(scope, receive, limit, declared)
        if has_body and body is None:
            body = await _read_body(scope, receive, limit)
            if body is None:
                return None
        return receive if body is None else _replay(body, receive)

    def _refuse_cross_site(self, scope: Scope) -> None:
        origin = _header(scope, b"origin")
        fetch_site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
        if origin is not None and not self._is_this_server(scope, origin):
            raise CrossSiteWrite(
                f"Refused a write from origin {origin[:200]}: it is not this server. "
                "Browsers may write only from obpilot's own pages; other clients send no "
                "Origin header"
            )
        # same-site: a sibling host's page, unless its Origin names this server.
        if fetch_site == "cross-site" or (fetch_site == "same-site" and origin is None):
            raise CrossSiteWrite(
                f"Refused a write that a browser sent from another site (Sec-Fetch-Site: "
                f"{fetch_site})"
            )

    def _is_this_server(self, scope: Scope, origin: str) -> bool:
        parts = urlsplit(origin)
        claimed = _authority(parts.scheme, parts.netloc)
        if claimed is None:  # "null" (a sandboxed page, a redirect) or garbage
            return False
        own = (_header(scope, b"host") or "", self.advertised_address)
        return any(claimed == _authority(parts.scheme, address) for address in own if address)


def _refuse_declared_length(scope: Scope, limit: int) -> None:
    length = (_header(scope, b"content-length") or "").strip()
    if length.isdigit() and int(length) > limit:
        raise _too_large(scope, limit)


def _refuse_media_type(scope: Scope, route: tuple[str, str]) -> None:
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if route == PACKAGE_UPLOAD_ROUTE:
        if content_type != MULTIPART_TYPE:
            shown = content_type or "none"
            raise UnsupportedMediaType(
                f"Unsupported media type {shown}; upload a package as {MULTIPART_TYPE}"
            )
        return
    if content_type == JSON_TYPE or (route == LOGIN_ROUTE and content_type in FORM_TYPES):
        return
    shown = content_type or "none"
    raise UnsupportedMediaType(f"Unsupported media type {shown}; send application/json")


def _too_large(scope: Scope, limit: int) -> PayloadTooLarge:
    route = (scope["method"], scope["path"])
    setting, hint = "OBPILOT_MAX_BODY_BYTES", ""
    if route == LOGIN_ROUTE:
        setting = "OBPILOT_MAX_LOGIN_BODY_BYTES"
    elif route == PACKAGE_UPLOAD_ROUTE:
        setting = "OBPILOT_MAX_PACKAGE_BYTES"
    return PayloadTooLarge(f"The request body is larger than {limit} bytes ({setting}){hint}")


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, counted as it streams in and refused past `limit` bytes; None if
    the client disconnected first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise _too_large(scope, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _declared_md5(scope: Scope) -> str:
    """The digest a signed streamed upload declares (upper-case hex): its signature covers
    it, and its body must match it."""
    header = _header(scope, b"content-md5")
    digest = declared_md5(header) if header is not None else None
    if digest is None:
        raise NotAuthenticated(
            "AK/SK signature refused: a signed package upload declares its body's MD5 in a "
            "Content-MD5 header (hex or base64), which the signature covers"
        )
    return digest


def _counted(scope: Scope, receive: Receive, limit: int, md5: str | None) -> Receive:
    """The client's `receive`, refusing the body once more than `limit` bytes came in, and,
    given the `md5` it was signed over, once it ends with another digest (the route sees
    the refusal as an error, and renders it)."""
    size = 0
    digest = hashlib.md5(usedforsecurity=False)

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(scope, limit)
        if md5 is not None and message["type"] == "http.request":
            digest.update(chunk)
            if not message.get("more_body", False) and digest.hexdigest().upper() != md5:
                raise NotAuthenticated(
                    "AK/SK signature refused: the body does not match its Content-MD5 header"
                )
        return message

    return counted


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read by the gate, then the client's own messages (so
    a streaming response still learns of a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection that has not sent a whole request
    head within `head_timeout` seconds of opening, or of its request's first byte. uvicorn's
    own timeout covers only idle keep-alive connections, so a slow or silent client could
    hold a connection (and its memory) for ever."""

    head_timeout: float
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head_timer()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        if self._head_timer is None:  # the first byte keeps the deadline counted from opening
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self.transport.close()


def closing_slow_heads(seconds: float) -> type[HeadTimeoutProtocol]:
    """The protocol class for uvicorn's `http` option."""

    class Protocol(HeadTimeoutProtocol):
        head_timeout = seconds

    return Protocol
