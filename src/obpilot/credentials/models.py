"""The credential table."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from obpilot.db.base import Base, BigId, TimestampMixin


class CredentialType(StrEnum):
    PASSWORD = "PASSWORD"  # noqa: S105 - a type name, not a password
    PRIVATE_KEY = "PRIVATE_KEY"


class TargetType(StrEnum):
    HOST = "HOST"


class Credential(TimestampMixin, Base):
    __tablename__ = "credential"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The user who created it, the only one who sees and uses it but for holders of
    #: `CREDENTIAL:*:USE` (ADMIN); NULL for credentials made before credentials had owners.
    owner_id: Mapped[int | None] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(256))
    target_type: Mapped[str] = mapped_column(String(16), default=TargetType.HOST)
    type: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    #: The password or the private key, encrypted (SecretBox).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    #: The private key's passphrase, encrypted; NULL without one.
    passphrase_encrypted: Mapped[str | None] = mapped_column(Text)
