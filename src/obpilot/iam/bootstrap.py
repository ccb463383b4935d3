"""Start-up of identity and access: the secret box, the authenticator and the first
administrator."""

from __future__ import annotations

import sys
from datetime import timedelta

from fastapi import FastAPI

from obpilot.db.engine import Database
from obpilot.iam import service
from obpilot.iam.authentication import Authenticator
from obpilot.logging import get_logger
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings

log = get_logger(__name__)


def secret_box_for(settings: Settings) -> SecretBox:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return SecretBox.from_settings(home=settings.home, key=key)


def bound_address(settings: Settings) -> str:
    """host:port as a client writes it in the Host header (an IPv6 address in brackets)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{host}:{settings.port}"


async def start_iam(app: FastAPI, settings: Settings, database: Database) -> None:
    secret_box = secret_box_for(settings)
    app.state.secret_box = secret_box
    app.state.authenticator = Authenticator(
        database=database,
        secret_box=secret_box,
        lockout_attempts=settings.lockout_attempts,
        lockout_duration=timedelta(seconds=settings.lockout_seconds),
        session_lifetime=timedelta(seconds=settings.session_lifetime_seconds),
        basic_cache_seconds=settings.basic_auth_cache_seconds,
        login_failures_per_address=settings.login_failures_per_address,
        trusted_proxies=settings.trusted_proxies,
        server_hosts={settings.server_address, bound_address(settings)},
    )
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    first = await service.ensure_first_admin(database, password=given)
    if first.generated_password is not None:
        announce_generated_password(first.generated_password)
    elif first.created:
        log.info("first start: created user admin with the password from OBPILOT_ADMIN_PASSWORD")


def announce_generated_password(password: str) -> None:
    """Shown once, on stderr only: the log (which may be shipped elsewhere) never sees it."""
    log.warning(
        "first start: created user admin with a generated password, printed once on stderr; "
        "set OBPILOT_ADMIN_PASSWORD to choose it instead"
    )
    banner = "=" * 72
    print(
        f"\n{banner}\n obpilot first start: user 'admin' was created.\n"
        f" Its generated password (shown only this once): {password}\n"
        f" Change it with `obpilot user passwd admin` or the API.\n{banner}\n",
        file=sys.stderr,
        flush=True,
    )
