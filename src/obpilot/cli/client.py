"""The CLI's HTTP client of an OCP-compatible API: authentication (HTTP Basic, or OCP 4.x
AK/SK signatures computed by the same rules the server verifies), the response envelope,
and API errors turned into exit codes. Knows nothing of rendering."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from obpilot.cli.errors import CliError, ExitCode
from obpilot.cli.profiles import Profile
from obpilot.iam.signatures import (
    SCHEME,
    canonical_message,
    content_md5,
    sign,
)

Json = dict[str, Any]
CONFLICT_CODES = {"OBE11020", "OBE11007", "TSK10007"}
UPLOAD_CHUNK = 1 << 20  # bytes read from disk at a time when a file is uploaded


class AccessKeyAuth(httpx.Auth):
    """Signs exactly the request that goes out (after httpx set its Host and body). With
    `body_md5`, the MD5 of a streamed body computed beforehand: the body is then not read
    into memory to be signed."""

    requires_request_body = True

    def __init__(self, access_key_id: str, secret: str, *, body_md5: str | None = None) -> None:
        self.access_key_id = access_key_id
        self._secret = secret
        self._body_md5 = body_md5
        self.requires_request_body = body_md5 is None

    def for_body_md5(self, body_md5: str) -> AccessKeyAuth:
        """The same key, signing a streamed body whose (upper-case hex) MD5 is `body_md5`."""
        return AccessKeyAuth(self.access_key_id, self._secret, body_md5=body_md5)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        date = format_datetime(datetime.now(UTC), usegmt=True)
        request.headers["Date"] = date
        body_md5 = self._body_md5 if self._body_md5 is not None else content_md5(request.content)
        if self._body_md5 is not None:  # the server checks the streamed body against it
            request.headers["Content-MD5"] = self._body_md5
        signature = sign(self._secret, signed_message(request, body_md5, date))
        request.headers["Authorization"] = f"{SCHEME} {self.access_key_id}:{signature}"
        yield request


def signed_message(request: httpx.Request, body_md5: str, date: str) -> str:
    """The message the server checks the signature of, with the body's MD5 given rather
    than computed from a body in memory."""
    return canonical_message(
        method=request.method,
        body_md5=body_md5,
        content_type=request.headers.get("content-type", ""),
        date=date,
        host=request.headers["host"],
        headers=request.headers.multi_items(),
        path=request.url.raw_path.decode("ascii").split("?", 1)[0],
        query=request.url.query.decode("ascii"),
    )


class ApiError(CliError):
    """An error answer of the API: its HTTP status, OCP error code, message and traceId,
    and its findings about single fields (OCP's `subErrors`), each shown on its own line
    as `field: message` under the main message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        trace_id: str | None,
        findings: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.api_message = message
        self.trace_id = trace_id
        self.findings = findings or []
        shown = f"{message} ({code}, HTTP {status}" + (
            f", traceId {trace_id})" if trace_id else ")"
        )
        shown += "".join(f"\n  {field}: {said}" for field, said in self.findings)
        super().__init__(shown, _exit_code(status, code))


def _exit_code(status: int, code: str) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 409 or code in CONFLICT_CODES:
        return ExitCode.CONFLICT
    if 400 <= status < 500 and status != 429:
        return ExitCode.USAGE
    return ExitCode.TASK_FAILED


def auth_for(profile: Profile) -> httpx.Auth:
    if profile.access_key_id and profile.access_key_secret:
        return AccessKeyAuth(profile.access_key_id, profile.access_key_secret)
    raise CliError("the profile holds no access key: run `obpilot login` again")


def check_url(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(f"bad URL {url!r}: give the server's http:// or https:// address")
    return url.rstrip("/")


class ApiClient:
    """One server, one identity. `last_trace_id` is the traceId of the latest answer."""

    def __init__(self, base_url: str, auth: httpx.Auth, *, timeout: float = 30.0) -> None:
        self.base_url = check_url(base_url)
        self._auth = auth
        # trust_env=False: talk to the named server directly, whatever proxy is set.
        self._http = httpx.AsyncClient(
            base_url=self.base_url, auth=auth, timeout=timeout, trust_env=False
        )
        self.last_trace_id: str | None = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Json | None = None,
    ) -> Any:
        """The answer's `data`; an error answer raises ApiError."""
        given = {k: v for k, v in (params or {}).items() if v is not None}
        request = self._http.build_request(method, path, params=given, json=body)
        return await self._send(request, self._auth, f"{method} {path}")

    async def _send(self, request: httpx.Request, auth: httpx.Auth, what: str) -> Any:
        try:
            response = await self._http.send(request, auth=auth)
        except httpx.TransportError as error:
            raise CliError(
                f"cannot reach {self.base_url}: {type(error).__name__} {error}".rstrip(),
                ExitCode.TASK_FAILED,
            ) from None
        self.last_trace_id = response.headers.get("x-trace-id")
        answer = _json_or_none(response)
        if (
            response.status_code >= 400
            or not isinstance(answer, dict)
            or not answer.get("successful", True)
        ):
            raise _api_error(response, answer, what)
        return answer.get("data")

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Json | None = None) -> Any:
        # Always a JSON body, `{}` for none: OCP's POSTs accept it, and obpilot's gate
        # (at this writing) leaves a signed POST with an empty body waiting for its body.
        return await self.call("POST", path, body=body if body is not None else {})

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.call("DELETE", path, params=params)

    async def upload(
        self,
        path: str,
        file: Path,
        *,
        field: str = "file",
        progress: Callable[[int], None] | None = None,
    ) -> Any:
        """POSTs `file` as the multipart/form-data field `field`, streamed from disk (never
        held whole in memory); `progress` hears the bytes of the file sent so far. An AK/SK
        signature covers the body's MD5: a first pass over the file computes it."""
        size = (await asyncio.to_thread(file.stat)).st_size
        boundary = secrets.token_hex(16)
        name = file.name.replace("\\", "\\\\").replace('"', "%22")
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        auth = self._auth
        if isinstance(auth, AccessKeyAuth):
            auth = auth.for_body_md5(await asyncio.to_thread(_md5_of, head, file, tail))

        async def body() -> AsyncIterator[bytes]:
            yield head
            sent = 0
            source = await asyncio.to_thread(file.open, "rb")
            try:
                while chunk := await asyncio.to_thread(source.read, UPLOAD_CHUNK):
                    sent += len(chunk)
                    if sent > size:
                        break
                    yield chunk
                    if progress is not None:
                        progress(sent)
            finally:
                source.close()
            if sent != size:
                raise CliError(f"{file} changed while it was uploaded: upload abandoned")
            yield tail

        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        request = self._http.build_request(
            "POST",
            path,
            content=body(),
            headers=headers,
            # The server reads the whole file before it answers (its checksum, its kind).
            timeout=httpx.Timeout(30.0, read=600.0),
        )
        return await self._send(request, auth, f"POST {path}")

    async def events(
        self, path: str, *, last_event_id: str | None = None
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """The Server-Sent Events of `path`, resuming after `last_event_id`."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        # No read timeout: the server sends a keep-alive every 15 s; the caller bounds waits.
        timeout = httpx.Timeout(30.0, read=None)
        async with aconnect_sse(
            self._http, "GET", path, headers=headers, timeout=timeout
        ) as source:
            if source.response.status_code >= 400:
                await source.response.aread()
                self.last_trace_id = source.response.headers.get("x-trace-id")
                raise _api_error(source.response, _json_or_none(source.response), path)
            async for event in source.aiter_sse():
                yield event


def _md5_of(head: bytes, file: Path, tail: bytes) -> str:
    """The upper-case hex MD5 of `head`, the file's bytes and `tail`, read in chunks."""
    digest = hashlib.md5(head, usedforsecurity=False)
    with file.open("rb") as source:
        while chunk := source.read(UPLOAD_CHUNK):
            digest.update(chunk)
    digest.update(tail)
    return digest.hexdigest().upper()


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _api_error(response: httpx.Response, answer: Any, what: str) -> ApiError:
    trace_id = response.headers.get("x-trace-id")
    if not isinstance(answer, dict):
        message = f"{what}: not an OCP API answer: {response.text[:200]!r}"
        return ApiError(response.status_code, "", message, trace_id)
    error = answer.get("error") or {}
    findings = [
        (str(sub.get("field", "")), str(sub.get("message", "")))
        for sub in error.get("subErrors") or []
        if isinstance(sub, dict)
    ]
    return ApiError(
        response.status_code,
        str(error.get("code", "")),
        str(error.get("message", response.reason_phrase)),
        answer.get("traceId") or trace_id,
        findings,
    )


def client_for(profile: Profile) -> ApiClient:
    return ApiClient(profile.url, auth_for(profile))
