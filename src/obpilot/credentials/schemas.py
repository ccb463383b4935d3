"""Credential shapes on the wire. Input carries the secret; output never does."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from obpilot.api.envelope import CamelModel, TimesOut
from obpilot.credentials.models import CredentialType, TargetType


class SshCredentialIn(CamelModel):
    type: CredentialType
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    password: SecretStr | None = Field(default=None, description="For type PASSWORD.")
    private_key: SecretStr | None = Field(
        default=None, description="For type PRIVATE_KEY: OpenSSH or PEM text."
    )
    passphrase: SecretStr | None = Field(
        default=None, description="For type PRIVATE_KEY: the key's passphrase, if it has one."
    )

    @model_validator(mode="after")
    def _secret_matches_type(self) -> SshCredentialIn:
        password = self.password.get_secret_value() if self.password else ""
        key = self.private_key.get_secret_value() if self.private_key else ""
        if self.type == CredentialType.PASSWORD:
            if not password or key:
                raise ValueError("a PASSWORD credential needs password (and no privateKey)")
            if len(password) > 1024:
                raise ValueError("password: at most 1024 characters")
        else:
            if not key or password:
                raise ValueError("a PRIVATE_KEY credential needs privateKey (and no password)")
            if len(key) > 16384:
                raise ValueError("privateKey: at most 16384 characters")
        if self.passphrase is not None and self.type != CredentialType.PRIVATE_KEY:
            raise ValueError("passphrase belongs to a PRIVATE_KEY credential")
        return self


class CredentialCreate(CamelModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=256)
    target_type: TargetType = TargetType.HOST
    ssh_credential_property: SshCredentialIn


class SshCredentialOut(CamelModel):
    type: str
    username: str


class CredentialOut(TimesOut):
    id: int
    name: str
    description: str | None
    target_type: str
    ssh_credential_property: SshCredentialOut
