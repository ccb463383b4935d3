"""Who is calling: HTTP Basic, OCP AK/SK signatures and console sessions, with OCP's
lockout (N failed passwords in a row lock the account for a while).

Every check reads the user row from the metadb, so a disabled or locked account, a changed
password, a revoked session or a deleted access key takes effect on every instance at
once. Failures are counted in their own committed transaction: the request that failed is
rolled back, the count is not."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NoReturn

from obpilot.api.envelope import format_time
from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.errors import (
    AccountDisabled,
    AccountLocked,
    BadCredentials,
    Forbidden,
    NotAuthenticated,
)
from obpilot.iam import passwords, service, signatures
from obpilot.iam.models import User
from obpilot.iam.permissions import PermissionSet, Principal
from obpilot.iam.repository import AccessKeyRepository, SessionRepository, UserRepository
from obpilot.secretbox import SecretBox

SESSION_COOKIE = "obpilot_session"
CSRF_COOKIE = "obpilot_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@lru_cache(maxsize=1024)
def _permission_set(expressions: frozenset[str]) -> PermissionSet:
    return PermissionSet.parse(expressions)


def _principal(
    user: User, expressions: Iterable[str], method: str, session_id: int | None = None
) -> Principal:
    return Principal(
        id=user.id,
        username=user.username,
        permissions=_permission_set(frozenset(expressions)),
        method=method,
        session_id=session_id,
    )


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that an AK/SK signature covers."""

    authorization: str
    method: str
    body: bytes
    content_type: str
    date: str | None
    host: str
    headers: list[tuple[str, str]]
    path: str
    query: str
    content_md5: str | None


def parse_basic(value: str) -> tuple[str, str]:
    """`Basic base64(user:password)` -> (user, password)."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("Malformed Basic credentials: not base64 of user:password") from None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        raise NotAuthenticated("Malformed Basic credentials: not base64 of user:password")
    return username, password


class Authenticator:
    def __init__(
        self,
        *,
        database: Database,
        secret_box: SecretBox,
        lockout_attempts: int,
        lockout_duration: timedelta,
        session_lifetime: timedelta,
        basic_cache_seconds: float,
    ) -> None:
        self.database = database
        self.secret_box = secret_box
        self.lockout_attempts = lockout_attempts
        self.lockout_duration = lockout_duration
        self.session_lifetime = session_lifetime
        self.cache = passwords.VerifiedPasswordCache(basic_cache_seconds)

    # ---- passwords ----------------------------------------------------------------

    async def basic(self, username: str, password: str) -> Principal:
        user, expressions = await self._check_password(username, password, use_cache=True)
        await self._clear_failures(user)
        return _principal(user, expressions, "basic")

    async def login(
        self, username: str, password: str, *, source_address: str | None
    ) -> tuple[Principal, service.NewSession]:
        user, expressions = await self._check_password(username, password, use_cache=False)
        async with self.database.transaction(write=True) as session:
            await UserRepository(session).clear_failures(user.id, login_time=utcnow())
            new = await service.open_session(
                session,
                user_id=user.id,
                lifetime=self.session_lifetime,
                source_address=source_address,
            )
        return _principal(user, expressions, "session", new.id), new

    async def _load(self, username: str) -> tuple[User | None, list[str]]:
        async with self.database.transaction() as session:
            users = UserRepository(session)
            user = await users.get_bare_by_username(username)
            expressions = await users.permission_expressions(user.id) if user else []
        return user, expressions

    async def _check_password(
        self, username: str, password: str, *, use_cache: bool
    ) -> tuple[User, list[str]]:
        user, expressions = await self._load(username)
        now = utcnow()
        if user is None:
            await passwords.verify_password_async(None, password)  # same time as a wrong one
            raise BadCredentials("Bad username or password")
        self._refuse_locked(user, now)
        verified = use_cache and self.cache.hit(user.id, user.password_hash, password)
        if not verified:
            verified = await passwords.verify_password_async(user.password_hash, password)
            if verified and use_cache:
                self.cache.remember(user.id, user.password_hash, password)
        if not verified:
            await self._count_failure(user, now)
        if not user.enabled:
            raise AccountDisabled(f"Account {user.username} is disabled")
        return user, expressions

    def _refuse_locked(self, user: User, now: datetime) -> None:
        if user.locked_until is not None and user.locked_until > now:
            raise AccountLocked(
                f"Account {user.username} is locked after too many failed logins, until "
                f"{format_time(user.locked_until)}"
            )

    async def _count_failure(self, user: User, now: datetime) -> NoReturn:
        locked_until = None
        async with self.database.transaction(write=True) as session:
            users = UserRepository(session)
            failures = await users.record_failure(user.id)
            if failures >= self.lockout_attempts:
                locked_until = now + self.lockout_duration
                await users.lock(user.id, locked_until)
        self.cache.forget_user(user.id)
        if locked_until is not None:
            raise AccountLocked(
                f"Bad username or password; account {user.username} is now locked after "
                f"{self.lockout_attempts} failed logins, until {format_time(locked_until)}"
            )
        left = self.lockout_attempts - failures
        raise BadCredentials(
            f"Bad username or password; {left} attempt(s) left before the account is locked"
        )

    async def _clear_failures(self, user: User) -> None:
        # Only write when there is something to clear: the usual request stays read-only.
        if user.failed_attempts or user.locked_until is not None:
            async with self.database.transaction(write=True) as session:
                await UserRepository(session).clear_failures(user.id)

    def _refuse_unusable(self, user: User, now: datetime) -> None:
        self._refuse_locked(user, now)
        if not user.enabled:
            raise AccountDisabled(f"Account {user.username} is disabled")

    # ---- AK/SK ----------------------------------------------------------------------

    async def access_key(self, request: SignedRequest) -> Principal:
        try:
            access_key_id, signature = signatures.parse_authorization(request.authorization)
            now = utcnow()
            signatures.check_date(request.date, now)
            async with self.database.transaction() as session:
                key = await AccessKeyRepository(session).get(access_key_id)
                users = UserRepository(session)
                user = await users.get_bare(key.user_id) if key else None
                expressions = await users.permission_expressions(user.id) if user else []
            if key is None or user is None:
                raise signatures.SignatureRejected(f"Unknown AccessKeyId {access_key_id}")
            if request.content_md5 is not None and not _md5_matches(
                request.content_md5, request.body
            ):
                raise signatures.SignatureRejected("The body does not match its Content-MD5 header")
            message = signatures.canonical_message(
                method=request.method,
                body=request.body,
                content_type=request.content_type,
                date=request.date or "",
                host=request.host,
                headers=request.headers,
                path=request.path,
                query=request.query,
            )
            secret = self.secret_box.decrypt(key.secret_encrypted)
            if not signatures.signature_matches(secret, message, signature):
                raise signatures.SignatureRejected(signatures.mismatch_message(message))
        except signatures.SignatureRejected as rejected:
            raise NotAuthenticated(f"AK/SK signature refused: {rejected}") from None
        self._refuse_unusable(user, now)
        return _principal(user, expressions, "accessKey")

    # ---- console sessions -------------------------------------------------------------

    async def session(self, token: str) -> tuple[Principal, str]:
        """The caller behind a session cookie, and the hash of that session's CSRF token."""
        now = utcnow()
        async with self.database.transaction() as session:
            console_session = await SessionRepository(session).get_live(
                service.token_hash(token), now
            )
            users = UserRepository(session)
            user = await users.get_bare(console_session.user_id) if console_session else None
            expressions = await users.permission_expressions(user.id) if user else []
        if console_session is None or user is None:
            raise NotAuthenticated("The session has expired or was logged out; log in again")
        self._refuse_unusable(user, now)
        return _principal(
            user, expressions, "session", console_session.id
        ), console_session.csrf_hash


def check_csrf(method: str, csrf_token: str | None, csrf_hash: str) -> None:
    """Double-submit: a cookie-authenticated write must echo the CSRF cookie in a header,
    which a page on another site cannot read."""
    if method in SAFE_METHODS:
        return
    if csrf_token and hmac.compare_digest(service.token_hash(csrf_token), csrf_hash):
        return
    raise Forbidden(
        f"Missing or wrong CSRF token: send the {CSRF_COOKIE} cookie's value in the "
        f"{CSRF_HEADER} header"
    )


def _md5_matches(declared: str, body: bytes) -> bool:
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    declared = declared.strip()
    if hmac.compare_digest(declared.upper().encode(), digest.hex().upper().encode()):
        return True
    return hmac.compare_digest(declared.encode(), base64.b64encode(digest))
