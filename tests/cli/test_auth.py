"""`obpilot login|logout|context` against a real server: a password buys an access key
that the profile keeps (never the password), `logout` revokes it."""

from __future__ import annotations

import json
import stat

import httpx

from tests.cli.conftest import ADMIN, Cli, Stack
from tests.support.server import ADMIN_PASSWORD


def _admin_keys(stack: Stack) -> set[str]:
    listed = stack.api("GET", "/api/v2/iam/accessKeys")
    return {key["accessKeyId"] for key in listed["contents"]}


def test_login_keeps_an_access_key_and_logout_revokes_it(stack: Stack, cli: Cli) -> None:
    before = _admin_keys(stack)
    result = cli.login(stack)
    assert ADMIN_PASSWORD not in result.output
    created = _admin_keys(stack) - before
    assert len(created) == 1
    (key_id,) = created

    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    saved = cli.config.read_text()
    assert key_id in saved
    assert ADMIN_PASSWORD not in saved
    secret = saved.split('access_key_secret = "')[1].split('"')[0]
    # The secret works (it signs every call) and is shown nowhere.
    listed = cli("context", "-o", "wide")
    assert listed.exit_code == 0
    assert key_id in listed.stdout
    assert secret not in listed.output
    assert cli("cluster", "list").exit_code == 0

    out = cli("logout")
    assert out.exit_code == 0, out.output
    assert f"access key {key_id} is revoked" in out.stderr
    assert key_id not in _admin_keys(stack)
    assert "default" not in cli.config.read_text()
    assert cli("cluster", "list").exit_code == 2  # no profile any more


def test_login_with_an_access_key_and_switch_contexts(stack: Stack, cli: Cli) -> None:
    created = stack.api("POST", "/api/v2/iam/accessKeys", json={})
    key_id, secret = created["accessKeyId"], created["accessKeySecret"]
    result = cli(
        "login",
        "--url",
        stack.url,
        "--user",
        "admin",
        "--access-key-id",
        key_id,
        "--access-key-secret-stdin",
        "--profile",
        "keyed",
        input=secret + "\n",
    )
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    cli.login(stack)  # the default profile, now current

    profiles = json.loads(cli("context", "-o", "json").stdout)
    assert {p["name"]: p["current"] for p in profiles} == {"default": True, "keyed": False}
    assert cli("context", "keyed").exit_code == 0
    assert cli("cluster", "list", "-o", "json").exit_code == 0
    assert cli("context", "nosuch").exit_code == 2

    # A key given to login is the user's: logout forgets it and leaves it valid.
    out = cli("logout", "--profile", "keyed")
    assert out.exit_code == 0
    assert key_id in _admin_keys(stack)
    stack.api("DELETE", f"/api/v2/iam/accessKeys/{key_id}")
    cli("logout")


def test_bad_credentials_and_bad_input(stack: Stack, cli: Cli) -> None:
    stack.api(
        "POST",
        "/api/v2/iam/users",
        json={
            "username": "guesser",
            "password": "Guesser-pass-1",
            "roles": ["CLUSTER_VIEWER"],
            "email": "guesser@example.com",
        },
    )
    wrong = cli(
        "login", "--url", stack.url, "--user", "guesser", "--password-stdin", input="nope\n"
    )
    assert wrong.exit_code == 4
    assert "IAM10004" in wrong.stderr
    assert not cli.config.exists()

    forged = cli(
        "login",
        "--url",
        stack.url,
        "--user",
        "admin",
        "--access-key-id",
        "AKNOTAKEY",
        "--access-key-secret-stdin",
        input="secret\n",
    )
    assert forged.exit_code == 4
    assert (
        cli("login", "--url", "ftp://x", "--user", "a", "--password-stdin", input="p\n").exit_code
        == 2
    )
    no_tty = cli("login", "--url", stack.url, "--user", "admin")
    assert no_tty.exit_code == 2
    assert "--password-stdin" in no_tty.stderr
    assert (
        cli(
            "login",
            "--url",
            stack.url,
            "--user",
            "admin",
            "-p",
            "bad name!",
            "--password-stdin",
            input="x\n",
        ).exit_code
        == 2
    )
    assert httpx.get(stack.url + "/api/v2/ob/clusters", auth=ADMIN).status_code == 200
