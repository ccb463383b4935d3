"""Password hashing (argon2id) and the cache that spares Basic-authenticated requests the
hash on every call.

Verification runs in a worker thread: an argon2id check costs tens of milliseconds of CPU
and would otherwise stall the event loop. A successful Basic verification is remembered for
a short time, keyed by the user, the stored hash and an HMAC of the password under a key
that lives only in this process: a changed password (new stored hash) misses the cache at
once on every instance, and the cache never holds the password itself."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from functools import cache

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from obpilot.errors import BadRequest

_hasher = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 "low memory" profile


@cache
def _dummy_hash() -> str:
    """A hash of a random password, checked when the user does not exist, so that an
    unknown username takes as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


def check_strength(password: str) -> None:
    """OCP's rule, roughly: 8-128 characters with at least three of: upper case, lower case,
    digits, special characters."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise BadRequest(
            f"The password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    classes = [
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < 3:
        raise BadRequest(
            "The password must contain at least three of: upper-case letters, lower-case "
            "letters, digits, special characters"
        )


def generate_password() -> str:
    """A random password that passes `check_strength`."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = (
            "".join(secrets.choice(alphabet) for _ in range(18))
            + "-"
            + secrets.choice(string.digits)
        )
        try:
            check_strength(candidate)
        except BadRequest:
            continue
        return candidate


async def hash_password_async(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    return await anyio.to_thread.run_sync(verify_password, stored_hash, password)


class VerifiedPasswordCache:
    """Recent successful verifications: (user id, stored hash, HMAC(password)) -> expiry."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._key = secrets.token_bytes(32)
        self._entries: dict[tuple[int, str, bytes], float] = {}

    def _entry(self, user_id: int, stored_hash: str, password: str) -> tuple[int, str, bytes]:
        digest = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        return (user_id, stored_hash, digest)

    def hit(self, user_id: int, stored_hash: str, password: str) -> bool:
        if self.ttl <= 0:
            return False
        entry = self._entry(user_id, stored_hash, password)
        expires = self._entries.get(entry)
        if expires is None:
            return False
        if expires < time.monotonic():
            self._entries.pop(entry, None)
            return False
        return True

    def remember(self, user_id: int, stored_hash: str, password: str) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._prune()
        self._entries[self._entry(user_id, stored_hash, password)] = time.monotonic() + self.ttl

    def forget_user(self, user_id: int) -> None:
        for entry in [e for e in self._entries if e[0] == user_id]:
            del self._entries[entry]

    def _prune(self) -> None:
        now = time.monotonic()
        for entry in [e for e, expires in self._entries.items() if expires < now]:
            del self._entries[entry]
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
