"""Encryption of stored secrets (AK secrets, host credentials, cluster root passwords)
with the instance's secret key.

The key comes from the setting `OBPILOT_SECRET_KEY` or, failing that, from the file
`OBPILOT_HOME/secret.key`, created (mode 0600) on first use. Every instance that shares
a metadb must share this key."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from obpilot.errors import ObpilotError

KEY_FILE = "secret.key"


class SecretDecryptError(ObpilotError):
    status_code = 500
    code = "COM30000"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def digest(self, purpose: str, data: bytes) -> str:
        """A keyed digest of `data` (HMAC-SHA256, with a key derived from the secret key for
        `purpose`): it tells equal data apart from other data, and with no secret key the
        metadb alone cannot be used to guess what was digested."""
        derived = hmac.new(self._key, f"obpilot digest: {purpose}".encode(), hashlib.sha256)
        return hmac.new(derived.digest(), data, hashlib.sha256).hexdigest()

    @classmethod
    def from_settings(cls, *, home: Path, key: str | None) -> SecretBox:
        if key:
            return cls(key.encode())
        return cls(load_or_create_key(home / KEY_FILE))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretDecryptError(
                "Sensitive data decrypt failed: the secret key differs from the one that "
                "encrypted it (every instance on one metadb needs the same OBPILOT_SECRET_KEY)"
            ) from None


def load_or_create_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key
