"""OCP 4.x AK/SK request signatures.

    Authorization: OCP-ACCESS-KEY-HMACSHA1 {AccessKeyId}:{Signature}
    Signature = Base64(HMAC-SHA1(AccessKeySecret, message))

`message` is seven parts joined by "\\n": the method in upper case; the upper-case hex MD5
of the body ("" without a body); the Content-Type as sent; the Date header (RFC 1123, within
15 minutes of the server clock); the Host header with its port; the `x-ocp-*` headers sorted
by name, each `name:v1,v2`, joined by "\\n" ("" if none); and the path directly followed by
`?k=v&k2=v2`, keys sorted, a repeated key's values sorted and joined by ",", keys and values
percent-encoded per RFC 3986 (only `A-Za-z0-9-._~` unescaped, upper-case hex).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote

SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
MAX_CLOCK_SKEW = timedelta(minutes=15)
X_OCP_PREFIX = "x-ocp"


class SignatureRejected(Exception):
    """Why a signed request was refused; the message names the part that failed and never
    contains the expected signature."""


def _encode(value: str) -> str:
    return quote(value, safe="-._~")


def content_md5(body: bytes) -> str:
    if not body:
        return ""
    return hashlib.md5(body, usedforsecurity=False).hexdigest().upper().rjust(32, "0")


def canonical_headers(headers: Iterable[tuple[str, str]]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        if key.startswith(X_OCP_PREFIX):
            values.setdefault(key, []).append(value.strip())
    return "\n".join(f"{key}:{','.join(values[key])}" for key in sorted(values))


def canonical_resource(path: str, query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return path
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    parts = [
        f"{_encode(key)}={','.join(_encode(v) for v in sorted(grouped[key]))}"
        for key in sorted(grouped)
    ]
    return f"{path}?{'&'.join(parts)}"


def canonical_message(
    *,
    method: str,
    body_md5: str,
    content_type: str,
    date: str,
    host: str,
    headers: Iterable[tuple[str, str]],
    path: str,
    query: str,
) -> str:
    return "\n".join(
        [
            method.upper(),
            body_md5,
            content_type,
            date,
            host,
            canonical_headers(headers),
            canonical_resource(path, query),
        ]
    )


def sign(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_authorization(value: str) -> tuple[str, str]:
    """`OCP-ACCESS-KEY-HMACSHA1 {AK}:{Signature}` -> (AK, Signature)."""
    scheme, _, credentials = value.partition(" ")
    if scheme != SCHEME:
        raise SignatureRejected(f"Unsupported signature algorithm; use {SCHEME}")
    access_key_id, separator, signature = credentials.strip().partition(":")
    if not separator or not access_key_id or not signature:
        raise SignatureRejected(
            f"Malformed Authorization header; expected '{SCHEME} <AccessKeyId>:<Signature>'"
        )
    return access_key_id, signature


def check_date(value: str | None, now: datetime) -> None:
    if not value:
        raise SignatureRejected("The Date header is missing; signed requests need it")
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        sent = None
    if sent is None:
        raise SignatureRejected(
            "The Date header is not an RFC 1123 date such as 'Tue, 17 Jan 2023 03:36:01 GMT'"
        )
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(now - sent) > MAX_CLOCK_SKEW:
        raise SignatureRejected(
            "The Date header is more than 15 minutes away from the server clock "
            f"(server time {now.astimezone(UTC):%a, %d %b %Y %H:%M:%S GMT})"
        )


def signature_matches(secret: str, message: str, given: str) -> bool:
    return hmac.compare_digest(sign(secret, message).encode(), given.encode())


def new_access_key() -> tuple[str, str]:
    """A new (AccessKeyId, AccessKeySecret) pair."""
    return "AK" + secrets.token_hex(12).upper(), secrets.token_urlsafe(30)


def mismatch_message(message: str) -> str:
    """Tells the client what the server signed, so that it can find the part that differs
    (the body's MD5, a header, the query...) without learning the expected signature."""
    shown = message if len(message) <= 2000 else message[:2000] + "..."
    return (
        "The signature does not match the request: check the AccessKeySecret and each signed "
        "part (method, Content-MD5 of the body, Content-Type, Date, Host with port, x-ocp-* "
        f"headers, path and sorted query). The server signed: {shown!r}"
    )
