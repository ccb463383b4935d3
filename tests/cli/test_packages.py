"""`obpilot package upload|list|delete`. The tests with `fake` run against
tests/cli/fake_api.py (written before /api/v2/software-packages existed; it checks the AK/SK
signature of the streamed multipart body, which covers the body's MD5, by the server's
rules); the last one runs against the real server."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

from tests.cli.conftest import Cli, Stack
from tests.cli.fake_api import FakeApi, Seen, error, ok

PACKAGES = "/api/v2/software-packages"
SIZE = 3 * 1024 * 1024 + 17
FILE_NAME = "oceanbase-ce-4.3.5.0-100000202024123117.el7.x86_64.rpm"
PACKAGE = {
    "id": 5,
    "name": "oceanbase-ce",
    "fileName": FILE_NAME,
    "version": "4.3.5.0",
    "architecture": "x86_64",
    "size": SIZE,
    "sha1": "0123456789abcdef0123456789abcdef01234567",
    "deletable": True,
}


def _uploaded(seen: Seen) -> tuple[str | None, bytes]:
    """The file name and bytes of the multipart body's `file` field."""
    head = f"Content-Type: {seen.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + seen.body)
    (part,) = message.iter_parts()
    assert part.get_param("name", header="content-disposition") == "file"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_filename(), payload


def test_upload_streams_the_file_signed(fake: FakeApi, cli: Cli, tmp_path: Path) -> None:
    content = bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256)
    rpm = tmp_path / FILE_NAME
    rpm.write_bytes(content)
    fake.on("POST", PACKAGES, ok(PACKAGE))

    result = cli("package", "upload", str(rpm))
    assert result.exit_code == 0, result.output
    (seen,) = fake.requests("POST", PACKAGES)
    assert seen.headers["content-length"] == str(len(seen.body))  # sized, not chunked
    name, payload = _uploaded(seen)
    assert name == rpm.name
    assert payload == content
    assert result.stdout.splitlines()[0].split() == [
        "ID",
        "NAME",
        "VERSION",
        "ARCHITECTURE",
        "SIZE",
        "SHA1",
        "DELETABLE",
    ]
    assert "3.0 MiB" in result.stdout
    assert "0123456789ab " in result.stdout
    assert "package 5" in result.stderr
    # The fake's teardown checks that every request's signature matched.

    document = cli("package", "upload", str(rpm), "-o", "json")
    assert json.loads(document.stdout)["id"] == 5
    assert cli("package", "upload", str(tmp_path / "missing.rpm")).exit_code == 2
    assert cli("package", "upload", str(tmp_path)).exit_code == 2


def test_an_upload_refused_as_a_duplicate(fake: FakeApi, cli: Cli, tmp_path: Path) -> None:
    wheel = tmp_path / "pylibseekdb-1.0-py3-none-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"PK\x03\x04 small")
    fake.on("POST", PACKAGES, error(409, "PKG10002", "The same file is package 5"))
    refused = cli("package", "upload", str(wheel))
    assert refused.exit_code == 3, refused.output
    assert "package 5" in refused.stderr


def test_list_and_delete(fake: FakeApi, cli: Cli) -> None:
    fake.on("GET", PACKAGES, ok({"contents": [PACKAGE], "page": {"totalElements": 3}}))
    fake.on("DELETE", f"{PACKAGES}/5", ok(None))
    listed = cli("package", "list", "--keyword", "oceanbase")
    assert listed.exit_code == 0, listed.output
    row = listed.stdout.splitlines()[1].split()
    assert row == ["5", "oceanbase-ce", "4.3.5.0", "x86_64", "3.0", "MiB", "0123456789ab", "True"]
    assert fake.requests("GET", PACKAGES)[0].query["keyword"] == ["oceanbase"]
    assert "1 of 3 shown" in listed.stderr
    assert FILE_NAME in cli("package", "list", "-o", "wide").stdout

    assert cli("package", "delete", "5").exit_code == 2  # not confirmed
    assert not fake.requests("DELETE", f"{PACKAGES}/5")
    deleted = cli("package", "delete", "5", "-y")
    assert deleted.exit_code == 0, deleted.output
    assert "package 5 deleted" in deleted.stderr


def test_the_real_server_reads_a_streamed_signed_upload(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    """The gate reads the streamed body and checks its AK/SK signature: a file that is no
    package is refused for what it is (400), not for its signature (401)."""
    cli.login(stack)
    bogus = tmp_path / "not-a-package.rpm"
    bogus.write_bytes(b"not an rpm\n" * 1000)
    refused = cli("package", "upload", str(bogus))
    assert refused.exit_code == 2, refused.output
    assert "HTTP 400" in refused.stderr
    listed = cli("package", "list", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert "contents" in json.loads(listed.stdout)
