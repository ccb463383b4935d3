"""The API client: its signature of a body known only by its MD5 is the server's, and an
error's findings about single fields each show on a line of their own."""

from __future__ import annotations

import httpx

from obpilot.cli.client import ApiError, signed_message
from obpilot.iam.signatures import canonical_message, content_md5


def test_a_signature_over_a_given_md5_is_the_servers() -> None:
    body = b'{"name": "c2"}'
    request = httpx.Request(
        "POST",
        "http://127.0.0.1:8080/api/v2/ob/clusters?b=2&a=x%20y",
        content=body,
        headers={"Content-Type": "application/json", "X-OCP-Trace": "t1"},
    )
    date = "Tue, 17 Jan 2023 03:36:01 GMT"
    assert signed_message(request, content_md5(body), date) == canonical_message(
        method="POST",
        body_md5=content_md5(body),
        content_type="application/json",
        date=date,
        host="127.0.0.1:8080",
        headers=request.headers.multi_items(),
        path="/api/v2/ob/clusters",
        query="b=2&a=x%20y",
    )


def test_findings_follow_the_message_one_a_line() -> None:
    refused = ApiError(
        400, "COM10400", "The request is invalid", "abc", [("name", "must not be blank")]
    )
    assert refused.message == (
        "The request is invalid (COM10400, HTTP 400, traceId abc)\n  name: must not be blank"
    )
    assert ApiError(400, "COM10400", "Bad", None).message == "Bad (COM10400, HTTP 400)"
