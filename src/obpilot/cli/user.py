"""`obpilot user create|passwd|unlock|grant|list`: user administration straight on the
metadb, for the operator of the instance (for example to recover a locked or forgotten
admin).

Passwords are read from a hidden prompt, or from the first line of stdin with
`--password-stdin`; never from the command line, where other users could see them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.api.handlers import describe_validation_errors
from obpilot.db import migrate
from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.errors import ObpilotError, UserNotFound
from obpilot.iam import service
from obpilot.iam.models import User
from obpilot.iam.passwords import VerifiedPasswordCache
from obpilot.iam.permissions import PermissionSet, Principal
from obpilot.iam.repository import UserRepository
from obpilot.iam.schemas import UserCreate
from obpilot.paging import PageRequest
from obpilot.settings import Settings

app = typer.Typer(help="Users of this obpilot instance.", no_args_is_help=True)

# The operator at the console of the instance: may grant anything.
OPERATOR = Principal(id=0, username="obpilot-cli", permissions=PermissionSet.parse(["**"]))

T = TypeVar("T")

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs `work` in one write transaction on the (migrated) metadb; errors become a
    message and exit status 1."""
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_metadb_url)

    async def main() -> T:
        database = Database(
            settings.resolved_metadb_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        try:
            async with database.transaction(write=True) as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except ObpilotError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None


async def _user_named(session: AsyncSession, username: str) -> User:
    user = await UserRepository(session).get_by_username(username)
    if user is None:
        raise UserNotFound(username)
    return user


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="A role to give (repeatable).")
    ] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user."""
    password = _read_password(password_stdin)
    try:
        spec = UserCreate(username=username, password=password, email=email, roles=role or [])
    except ValidationError as error:
        # Described without the input values: one of them is the password.
        typer.echo(f"error: {describe_validation_errors(error.errors())}", err=True)
        raise typer.Exit(1) from None

    async def work(session: AsyncSession) -> User:
        return await service.create_user(session, spec=spec, actor=OPERATOR)

    user = _run(work)
    roles = ", ".join(r.name for r in user.roles) or "no roles"
    typer.echo(f"created user {user.username} (id {user.id}) with {roles}")


@app.command("passwd")
def passwd(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Reset a user's password; this also unlocks the account and revokes its console
    sessions and access keys."""
    password = _read_password(password_stdin)

    async def work(session: AsyncSession) -> None:
        user = await _user_named(session, username)
        await service.reset_password(
            session,
            user_id=user.id,
            new_password=password,
            actor=OPERATOR,
            cache=VerifiedPasswordCache(0),
        )
        await service.unlock_user(session, user_id=user.id, actor=OPERATOR)

    _run(work)
    typer.echo(
        f"password of {username} changed; account unlocked; sessions and access keys revoked"
    )


@app.command("unlock")
def unlock(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Unlock an account locked after failed password logins; its password stays."""

    async def work(session: AsyncSession) -> None:
        user = await _user_named(session, username)
        await service.unlock_user(session, user_id=user.id, actor=OPERATOR)

    _run(work)
    typer.echo(f"{username} unlocked")


@app.command("grant")
def grant(
    username: Annotated[str, typer.Argument(help="Login name.")],
    roles: Annotated[list[str], typer.Argument(help="Role names, e.g. CLUSTER_VIEWER.")],
    revoke: Annotated[bool, typer.Option(help="Take these roles away instead.")] = False,
) -> None:
    """Give roles to a user (or take them away with --revoke)."""

    async def work(session: AsyncSession) -> User:
        user = await _user_named(session, username)
        current = [r.name for r in user.roles]
        wanted = (
            [name for name in current if name not in roles]
            if revoke
            else list(dict.fromkeys([*current, *roles]))
        )
        return await service.set_user_roles(session, user_id=user.id, names=wanted, actor=OPERATOR)

    user = _run(work)
    typer.echo(f"{user.username}: {', '.join(r.name for r in user.roles) or 'no roles'}")


@app.command("list")
def list_users() -> None:
    """List the users, their state and their roles."""

    async def work(session: AsyncSession) -> list[User]:
        users, _ = await service.list_users(
            session, page=PageRequest(page=1, size=100_000, sort=()), keyword=None
        )
        return users

    now = utcnow()
    users = _run(work)
    typer.echo(f"{'ID':>5}  {'USERNAME':<24} {'STATE':<9} ROLES")
    for user in users:
        if not user.enabled:
            state = "disabled"
        elif user.locked_until is not None and user.locked_until > now:
            state = "locked"
        else:
            state = "enabled"
        roles = ",".join(r.name for r in user.roles) or "-"
        typer.echo(f"{user.id:>5}  {user.username:<24} {state:<9} {roles}")
