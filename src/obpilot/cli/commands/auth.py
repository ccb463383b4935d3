"""`obpilot login`, `obpilot logout`, `obpilot context`: profiles of servers and
credentials. A password is used once, to create an access key for the profile; the
profile keeps the key (revoked again by `logout`), never the password."""

from __future__ import annotations

import sys
from typing import Annotated

import httpx
import typer

from obpilot.cli import output
from obpilot.cli.client import ApiClient, ApiError, auth_for, check_url
from obpilot.cli.commands.common import OutputOption, run
from obpilot.cli.errors import CliError
from obpilot.cli.output import Column
from obpilot.cli.profiles import DEFAULT_PROFILE, Profile, ProfileStore, check_profile_name

ME = "/api/v2/iam/users/me"
ACCESS_KEYS = "/api/v2/iam/accessKeys"


def _read_secret(what: str, from_stdin: bool, flag: str) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        secret = str(typer.prompt(what, hide_input=True, err=True))
    else:
        raise CliError(f"stdin is not a terminal: give the {what.lower()} on stdin with {flag}")
    if not secret:
        raise CliError(f"the {what.lower()} is empty")
    return secret


async def _check_identity(client: ApiClient, user: str) -> None:
    me = await client.get(ME)
    if me.get("username") != user:
        raise CliError(f"these credentials are user {me.get('username')!r}'s, not {user!r}'s")


async def _key_from_password(url: str, user: str, password: str) -> Profile:
    async with ApiClient(url, httpx.BasicAuth(user, password)) as basic:
        try:
            created = await basic.post(ACCESS_KEYS)
        except ApiError as error:
            if error.status == 409:  # the user holds as many keys as it may
                raise CliError(
                    f"{error.message}. `obpilot logout` on a profile you no longer use revokes "
                    "its key; `GET /api/v2/iam/accessKeys` lists them",
                    error.exit_code,
                ) from None
            raise
        profile = Profile(
            url=url,
            user=user,
            access_key_id=created["accessKeyId"],
            access_key_secret=created["accessKeySecret"],
            key_created_by_login=True,
        )
        try:
            async with ApiClient(url, auth_for(profile)) as signed:
                await signed.get(ME)
        except CliError:
            # A key the profile cannot use (a signed Host the server does not accept, say)
            # would only linger: take it back.
            await basic.delete(f"{ACCESS_KEYS}/{profile.access_key_id}")
            raise
    return profile


async def _revoke(profile: Profile) -> str:
    """Revokes the key `login` created for the profile; says what happened."""
    if not (profile.key_created_by_login and profile.access_key_id):
        return "its credentials were given to login and stay valid"
    try:
        async with ApiClient(profile.url, auth_for(profile)) as client:
            await client.delete(f"{ACCESS_KEYS}/{profile.access_key_id}")
    except ApiError as error:
        if error.status == 401:
            return f"its access key {profile.access_key_id} was no longer valid"
        raise
    return f"its access key {profile.access_key_id} is revoked"


def login(
    url: Annotated[str, typer.Option(help="The API's address, e.g. http://127.0.0.1:8080")],
    user: Annotated[str, typer.Option(help="The user to log in as.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
    access_key_id: Annotated[
        str | None, typer.Option(help="Use this access key instead of a password.")
    ] = None,
    access_key_secret_stdin: Annotated[
        bool,
        typer.Option("--access-key-secret-stdin", help="Read the access key's secret from stdin."),
    ] = False,
    profile: Annotated[
        str, typer.Option("--profile", "-p", help="The profile to create or replace.")
    ] = DEFAULT_PROFILE,
) -> None:
    """Log in to an OCP-compatible API and keep the profile (the current one from now on).

    With a password (prompted, or --password-stdin), an access key is created for the
    profile and kept instead of the password; `obpilot logout` revokes it. Profiles live in
    ~/.config/obpilot/cli.toml (or $OBPILOT_CLI_CONFIG), readable by you only."""
    if access_key_id is None and access_key_secret_stdin:
        raise typer.BadParameter("--access-key-secret-stdin needs --access-key-id")
    if access_key_id is not None and password_stdin:
        raise typer.BadParameter("give either a password or an access key, not both")

    async def work() -> None:
        check_profile_name(profile)
        base_url = check_url(url)
        store = ProfileStore.load()
        if access_key_id is not None:
            secret = _read_secret(
                "Access key secret", access_key_secret_stdin, "--access-key-secret-stdin"
            )
            made = Profile(
                url=base_url, user=user, access_key_id=access_key_id, access_key_secret=secret
            )
        else:
            password = _read_secret("Password", password_stdin, "--password-stdin")
            made = await _key_from_password(base_url, user, password)
        async with ApiClient(base_url, auth_for(made)) as client:
            await _check_identity(client, user)
        replaced = store.profiles.get(profile)
        store.profiles[profile] = made
        store.current = profile
        store.save()
        how = f"access key {made.access_key_id}" + (
            " created for it" if made.key_created_by_login else ""
        )
        output.say(f"logged in to {base_url} as {user}: profile {profile!r} keeps {how}")
        if replaced is not None:
            output.say(f"the profile's previous credentials: {await _revoke(replaced)}")

    run(work)


def logout(
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="[default: the current profile]")
    ] = None,
) -> None:
    """Revoke the access key `login` created for the profile, and forget the profile."""

    async def work() -> None:
        store = ProfileStore.load()
        name, chosen = store.get(profile)
        what = await _revoke(chosen)
        del store.profiles[name]
        if store.current == name:
            store.current = None
        store.save()
        output.say(f"logged out: profile {name!r} is forgotten; {what}")

    run(work)


CONTEXT_COLUMNS = [
    Column("current", lambda p: "*" if p["current"] else ""),
    Column("name", lambda p: p["name"]),
    Column("url", lambda p: p["url"]),
    Column("user", lambda p: p["user"]),
    Column("auth", lambda p: p["auth"]),
    Column("access key", lambda p: p["accessKeyId"], wide_only=True),
]


def context(
    name: Annotated[str | None, typer.Argument(help="The profile to make current.")] = None,
    fmt: OutputOption = output.OutputFormat.TABLE,
) -> None:
    """List the profiles, or make NAME the current one."""

    async def work() -> None:
        store = ProfileStore.load()
        if name is not None:
            store.get(name)
            store.current = name
            store.save()
            output.say(f"profile {name!r} is current")
            return
        rows = [
            {
                "name": profile_name,
                "current": profile_name == store.current,
                "url": profile.url,
                "user": profile.user,
                "auth": profile.auth_kind,
                "accessKeyId": profile.access_key_id,
            }
            for profile_name, profile in sorted(store.profiles.items())
        ]
        if not rows and fmt in (output.OutputFormat.TABLE, output.OutputFormat.WIDE):
            output.say(f"no profiles in {store.path}: `obpilot login` creates one")
            return
        output.emit(rows, fmt, rows, CONTEXT_COLUMNS)

    run(work)
