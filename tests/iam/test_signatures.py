"""The server's message for AK/SK signatures, part by part, and its agreement with the
documentation-based client in tests/support/ocp_client.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from obpilot.iam import signatures
from obpilot.iam.signatures import SignatureRejected
from tests.support.ocp_client import string_to_sign

NOW = datetime(2023, 1, 17, 3, 36, 1, tzinfo=UTC)
DATE = "Tue, 17 Jan 2023 03:36:01 GMT"


def server_message(request: httpx.Request) -> str:
    return signatures.canonical_message(
        method=request.method,
        body_md5=signatures.content_md5(request.content),
        content_type=request.headers.get("content-type", ""),
        date=request.headers["date"],
        host=request.headers["host"],
        headers=request.headers.multi_items(),
        path=request.url.raw_path.decode().split("?")[0],
        query=request.url.query.decode(),
    )


@pytest.mark.parametrize(
    ("method", "url", "headers", "body"),
    [
        ("GET", "http://h:8080/api/v2/ob/clusters", {}, b""),
        ("GET", "http://h/api/v2/ob/clusters?status=B&status=A&name=x+y%2Fz", {}, b""),
        ("GET", "http://h:1/p?k=%C3%A9%E2%82%AC&e=&k2=%2A%27%28%29!", {}, b""),
        (
            "POST",
            "http://h:8080/api/v2/compute/hosts",
            {"Content-Type": "application/json;charset=utf-8", "X-OCP-B": "2", "x-ocp-a": "1"},
            b'{"innerIpAddress": "10.0.0.1"}',
        ),
    ],
)
def test_server_and_client_agree(
    method: str, url: str, headers: dict[str, str], body: bytes
) -> None:
    request = httpx.Request(method, url, headers={"Date": DATE, **headers}, content=body)
    assert server_message(request) == string_to_sign(request)


def test_parts() -> None:
    assert signatures.content_md5(b"") == ""
    assert signatures.content_md5(b"{}") == "99914B932BD37A50B983C5E7C90AE93B"
    assert signatures.canonical_headers([("X-Ocp-B", "2"), ("x-ocp-a", "1"), ("x-ocp-a", "0")]) == (
        "x-ocp-a:1,0\nx-ocp-b:2"
    )
    assert signatures.canonical_headers([("Host", "h"), ("X-Other", "1")]) == ""
    assert signatures.canonical_resource("/p", "") == "/p"
    assert signatures.canonical_resource("/p", "b=2&a=%20&b=1&c") == "/p?a=%20&b=1,2&c="
    assert signatures.canonical_resource("/p", "x=a%2Cb") == "/p?x=a%2Cb"


def test_authorization_header() -> None:
    assert signatures.parse_authorization("OCP-ACCESS-KEY-HMACSHA1 AK1:c2ln") == ("AK1", "c2ln")
    for bad in ("OCP-ACCESS-KEY-HMACSHA1 AK1", "OCP-ACCESS-KEY-HMACSHA1 :sig", "Basic x:y"):
        with pytest.raises(SignatureRejected):
            signatures.parse_authorization(bad)


def test_date_window() -> None:
    signatures.check_date(DATE, NOW + timedelta(minutes=15))
    signatures.check_date(DATE, NOW - timedelta(minutes=15))
    with pytest.raises(SignatureRejected, match="15 minutes"):
        signatures.check_date(DATE, NOW + timedelta(minutes=15, seconds=1))
    with pytest.raises(SignatureRejected, match="missing"):
        signatures.check_date(None, NOW)
    with pytest.raises(SignatureRejected, match="RFC 1123"):
        signatures.check_date("17/01/2023", NOW)


def test_signature_is_base64_hmac_sha1() -> None:
    # HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog"), a published vector.
    message = "The quick brown fox jumps over the lazy dog"
    assert signatures.sign("key", message) == "3nybhbi3iqa8ino29wqQcBydtNk="
    assert signatures.signature_matches("key", message, "3nybhbi3iqa8ino29wqQcBydtNk=")
    assert not signatures.signature_matches("key", message + ".", "3nybhbi3iqa8ino29wqQcBydtNk=")
