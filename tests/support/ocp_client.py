"""An OCP 4.x AK/SK client written from the OCP documentation alone (it shares no code with
obpilot's verifier), as an httpx auth flow: it signs exactly the request that goes out."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Generator
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, quote

import httpx


def rfc3986(value: str) -> str:
    return quote(value, safe="-._~")


def string_to_sign(request: httpx.Request) -> str:
    body = request.content
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest().upper() if body else ""
    x_ocp = {}
    for name, value in request.headers.multi_items():
        if name.lower().startswith("x-ocp"):
            x_ocp.setdefault(name.lower(), []).append(value)
    headers = "\n".join(f"{name}:{','.join(x_ocp[name])}" for name in sorted(x_ocp))
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
        query.setdefault(key, []).append(value)
    resource = request.url.raw_path.decode().split("?")[0]
    if query:
        resource += "?" + "&".join(
            rfc3986(key) + "=" + ",".join(rfc3986(v) for v in sorted(query[key]))
            for key in sorted(query)
        )
    return "\n".join(
        [
            request.method.upper(),
            md5,
            request.headers.get("content-type", ""),
            request.headers["date"],
            request.headers["host"],
            headers,
            resource,
        ]
    )


class OcpAccessKeyAuth(httpx.Auth):
    """Signs each request. `tamper` may change the request after signing (to prove that the
    server notices); `date` overrides the Date header."""

    def __init__(
        self,
        access_key_id: str,
        secret: str,
        *,
        date: datetime | str | None = None,
        send_date: bool = True,
        tamper: object = None,
        algorithm: str = "OCP-ACCESS-KEY-HMACSHA1",
    ) -> None:
        self.access_key_id = access_key_id
        self.secret = secret
        self.date = date
        self.send_date = send_date
        self.tamper = tamper
        self.algorithm = algorithm

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if isinstance(self.date, str):
            date = self.date
        else:
            date = format_datetime(self.date or datetime.now(UTC), usegmt=True)
        request.headers["Date"] = date
        message = string_to_sign(request)
        digest = hmac.new(self.secret.encode(), message.encode(), hashlib.sha1).digest()
        signature = base64.b64encode(digest).decode()
        request.headers["Authorization"] = f"{self.algorithm} {self.access_key_id}:{signature}"
        if not self.send_date:
            del request.headers["Date"]
        if callable(self.tamper):
            request = self.tamper(request)
        yield request
