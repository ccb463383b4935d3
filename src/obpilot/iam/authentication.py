"""Who is calling: HTTP Basic, OCP AK/SK signatures and console sessions, with OCP's
lockout (N failed passwords in a row lock the account's password logins for a while) and a
throttle on failed passwords per source address.

Every check reads the user row from the metadb, so a disabled or locked account, a changed
password, a revoked session or a deleted access key takes effect on every instance at
once. A password attempt is counted, in its own committed transaction, before its hash is
checked: the request that failed is rolled back, the count is not, and concurrent guesses
cannot get more verifications than the lockout allows."""

from __future__ import annotations

import base64
import hmac
import math
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from obpilot.db.base import utcnow
from obpilot.db.engine import Database
from obpilot.errors import (
    AccountDisabled,
    AccountLocked,
    BadCredentials,
    Forbidden,
    NotAuthenticated,
    TooManyRequests,
)
from obpilot.formats import format_time
from obpilot.iam import passwords, service, signatures
from obpilot.iam.models import User
from obpilot.iam.permissions import PermissionSet, Principal
from obpilot.iam.repository import (
    AccessKeyRepository,
    CountedAttempt,
    SessionRepository,
    UserRepository,
)
from obpilot.iam.schemas import USERNAME
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
    #: The body's MD5 as the signature covers it (upper-case hex; "" without a body).
    body_md5: str
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
        # A non-ASCII header value is a ValueError of its own, not a binascii.Error.
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:
        raise NotAuthenticated(
            "Malformed Basic credentials: not base64 (ASCII) of user:password"
        ) from None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        raise NotAuthenticated("Malformed Basic credentials: not base64 of user:password")
    return username, password


class LoginsThrottled(TooManyRequests):
    """429 with Retry-After: the source address has failed too many passwords lately."""

    def __init__(self, address: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"Too many failed password logins from {address}: its password logins are refused "
            f"for {seconds} more second(s); access keys and console sessions still work"
        )
        self.headers = {"Retry-After": str(seconds)}


class AddressThrottle:
    """Failed password attempts per source address over a sliding window: past `limit`,
    the address's password attempts are refused until its oldest failure leaves the window,
    so that one client cannot guess on (and lock) account after account.

    It lives in this instance's memory: it is a brake on guessing, not a record, and a
    metadb row per failed guess would let anonymous callers drive writes. With several
    instances behind a balancer an address gets `limit` per instance; a restart forgets."""

    MAX_ADDRESSES = 10_000

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        # Ordered by latest failure, so that the first entry is the one to drop when full.
        self._failures: dict[str, deque[float]] = {}

    def take(self, address: str, now: float) -> None:
        """Counts an attempt before it is verified (see `give_back`), or refuses it."""
        failures = self._failures.pop(address, None) or deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) >= self.limit:
            self._failures[address] = failures
            raise LoginsThrottled(address, failures[0] + self.window - now)
        failures.append(now)
        if len(self._failures) >= self.MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        self._failures[address] = failures

    def give_back(self, address: str, taken_at: float) -> None:
        """The attempt taken at `taken_at` had the right password: it is no failure."""
        failures = self._failures.get(address)
        if failures is not None and taken_at in failures:
            failures.remove(taken_at)


class UnknownNameAttempts:
    """The failure count and lock of login names that match no user, kept in memory so that
    such a name is answered exactly like an account (the same countdown, then the same
    lock): the answers do not tell which names exist. It mirrors
    `UserRepository.take_login_attempt`; nothing is ever verified against these names.
    Entries are never dropped for age, which would tell them apart from real counts, only
    the least recently tried when `MAX_NAMES` is reached."""

    MAX_NAMES = 10_000

    def __init__(self, allowed: int, lock_duration: timedelta) -> None:
        self.allowed = allowed
        self.lock_duration = lock_duration
        self._names: dict[str, tuple[int, datetime | None]] = {}

    def locked_until(self, name: str) -> datetime | None:
        return self._names.get(name, (0, None))[1]

    def take(self, name: str, now: datetime) -> CountedAttempt | None:
        failures, locked_until = self._names.pop(name, (0, None))
        if locked_until is not None and locked_until > now:
            self._names[name] = (failures, locked_until)
            return None
        if len(self._names) >= self.MAX_NAMES:
            del self._names[next(iter(self._names))]
        if failures + 1 >= self.allowed:
            self._names[name] = (0, now + self.lock_duration)
            return CountedAttempt(number=self.allowed, locked_until=now + self.lock_duration)
        self._names[name] = (failures + 1, None)
        return CountedAttempt(number=failures + 1, locked_until=None)


def _networks(addresses: Iterable[str]) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for address in addresses:
        try:
            networks.append(ip_network(address.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"trusted_proxies: {address!r} is not an IP address or network"
            ) from None
    return tuple(networks)


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
        login_failures_per_address: int,
        trusted_proxies: Iterable[str],
        server_hosts: Iterable[str],
    ) -> None:
        self.database = database
        self.secret_box = secret_box
        self.lockout_attempts = lockout_attempts
        self.lockout_duration = lockout_duration
        self.session_lifetime = session_lifetime
        self.cache = passwords.VerifiedPasswordCache(basic_cache_seconds)
        self.address_throttle = AddressThrottle(
            login_failures_per_address, lockout_duration.total_seconds()
        )
        self.unknown_names = UnknownNameAttempts(lockout_attempts, lockout_duration)
        self.trusted_proxies = _networks(trusted_proxies)
        # The Host an AK/SK signature covers must name this server, lower-cased.
        self.server_hosts = frozenset(host.lower() for host in server_hosts)

    def source_address(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client: the connection's peer, or, when the peer is a trusted proxy, the
        right-most X-Forwarded-For entry that is not a trusted proxy (entries further left
        are whatever the client chose to send)."""
        if peer is None or not self._trusted(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)

    # ---- passwords ----------------------------------------------------------------
    # A lock stops password logins only: the account's access keys and open console
    # sessions keep working, so that guessing from afar cannot cut a user off entirely.

    async def basic(
        self, username: str, password: str, *, source_address: str | None = None
    ) -> Principal:
        user, expressions = await self._load(username)
        self._refuse_locked(username, user)
        # A password verified moments ago is no guess: it costs no attempt.
        if user is None or not self.cache.hit(user.id, user.password_hash, password):
            user = await self._verify_password(username, user, password, source_address)
            self.cache.remember(user.id, user.password_hash, password)
        self._refuse_disabled(user)
        return _principal(user, expressions, "basic")

    async def login(
        self, username: str, password: str, *, source_address: str | None
    ) -> tuple[Principal, service.NewSession]:
        user, expressions = await self._load(username)
        self._refuse_locked(username, user)
        user = await self._verify_password(username, user, password, source_address)
        self._refuse_disabled(user)
        async with self.database.transaction(write=True) as session:
            await UserRepository(session).set_last_login(user.id, utcnow())
            new = await service.open_session(
                session,
                user_id=user.id,
                lifetime=self.session_lifetime,
                source_address=source_address,
            )
        return _principal(user, expressions, "session", new.id), new

    async def _load(self, username: str) -> tuple[User | None, list[str]]:
        if not USERNAME.fullmatch(username):
            return None, []  # no user can have this name
        async with self.database.transaction() as session:
            users = UserRepository(session)
            user = await users.get_bare_by_username(username)
            expressions = await users.permission_expressions(user.id) if user else []
        return user, expressions

    async def _verify_password(
        self, username: str, user: User | None, password: str, source_address: str | None
    ) -> User:
        """Counts the attempt, for the source address and for the account, before the hash
        is checked, so that no burst of guesses gets more than the allowed number verified;
        the right password gives its attempts back. An unknown name is answered exactly
        like an account, after the same work."""
        taken_at = time.monotonic()
        if source_address is not None:
            self.address_throttle.take(source_address, taken_at)
        attempt = await self._take_attempt(username, user)
        stored_hash = user.password_hash if user else None
        if not await passwords.verify_password_async(stored_hash, password) or user is None:
            raise self._failure(username, attempt)
        if source_address is not None:
            self.address_throttle.give_back(source_address, taken_at)
        async with self.database.transaction(write=True) as session:
            await UserRepository(session).clear_failures(user.id)
        return user

    async def _take_attempt(self, username: str, user: User | None) -> CountedAttempt:
        now = utcnow()
        if user is None:
            attempt = self.unknown_names.take(username, now)
            locked_until = self.unknown_names.locked_until(username)
        else:
            async with self.database.transaction(write=True) as session:
                users = UserRepository(session)
                attempt = await users.take_login_attempt(
                    user.id,
                    now=now,
                    allowed=self.lockout_attempts,
                    lock_until=now + self.lockout_duration,
                )
                locked_until = await users.locked_until(user.id) if attempt is None else None
        if attempt is None:  # a concurrent attempt locked the account first
            raise _locked(username, locked_until)
        return attempt

    def _failure(self, username: str, attempt: CountedAttempt) -> NotAuthenticated:
        if attempt.locked_until is not None:
            return AccountLocked(
                f"Bad username or password; account {username} is now locked after "
                f"{self.lockout_attempts} failed logins, until {format_time(attempt.locked_until)}"
            )
        left = self.lockout_attempts - attempt.number
        return BadCredentials(
            f"Bad username or password; {left} attempt(s) left before the account is locked"
        )

    def _refuse_locked(self, username: str, user: User | None) -> None:
        locked_until = user.locked_until if user else self.unknown_names.locked_until(username)
        if locked_until is not None and locked_until > utcnow():
            raise _locked(username, locked_until)

    @staticmethod
    def _refuse_disabled(user: User) -> None:
        if not user.enabled:
            raise AccountDisabled(f"Account {user.username} is disabled")

    # ---- AK/SK ----------------------------------------------------------------------

    async def access_key(self, request: SignedRequest) -> Principal:
        try:
            access_key_id, signature = signatures.parse_authorization(request.authorization)
            signatures.check_date(request.date, utcnow())
            self._check_host(request.host)
            async with self.database.transaction() as session:
                key = await AccessKeyRepository(session).get(access_key_id)
                users = UserRepository(session)
                user = await users.get_bare(key.user_id) if key else None
                expressions = await users.permission_expressions(user.id) if user else []
            if key is None or user is None:
                raise signatures.SignatureRejected(f"Unknown AccessKeyId {access_key_id}")
            if request.content_md5 is not None and not md5_matches(
                request.content_md5, request.body_md5
            ):
                raise signatures.SignatureRejected("The body does not match its Content-MD5 header")
            message = signatures.canonical_message(
                method=request.method,
                body_md5=request.body_md5,
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
        self._refuse_disabled(user)
        return _principal(user, expressions, "accessKey")

    def _check_host(self, host: str) -> None:
        """A signature made for another server (or a Host the client left to chance) must
        not be replayable here."""
        if host.lower() not in self.server_hosts:
            raise signatures.SignatureRejected(
                f"the signed Host {host or '(none)'} is not this server (expected one of "
                f"{', '.join(sorted(self.server_hosts))})"
            )

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
        self._refuse_disabled(user)
        return _principal(
            user, expressions, "session", console_session.id
        ), console_session.csrf_hash


def _locked(username: str, locked_until: datetime | None) -> AccountLocked:
    until = f", until {format_time(locked_until)}" if locked_until is not None else ""
    return AccountLocked(f"Account {username} is locked after too many failed logins{until}")


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


EMPTY_BODY_MD5 = "D41D8CD98F00B204E9800998ECF8427E"


def md5_matches(declared: str, body_md5: str) -> bool:
    """Whether a Content-MD5 header (hex, or base64 as RFC 1864 writes it) names the
    body whose upper-case hex MD5 is `body_md5`."""
    # The signature writes an empty body's MD5 as ""; a header names it in full.
    return declared_md5(declared) == (body_md5 or EMPTY_BODY_MD5)


def declared_md5(header: str) -> str | None:
    """A Content-MD5 header's digest as upper-case hex (None: not an MD5 in either form)."""
    value = header.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", value):
        return value.upper()
    try:
        digest = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return digest.hex().upper() if len(digest) == 16 else None
