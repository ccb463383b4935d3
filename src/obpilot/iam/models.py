"""Identity and access tables: users, roles and their permissions, access keys, console
sessions, and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from obpilot.db.base import Base, BigId, TimestampMixin, UtcDateTime, utcnow


class UserRole(Base):
    __tablename__ = "iam_user_role"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("iam_user.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("iam_role.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class User(TimestampMixin, Base):
    __tablename__ = "iam_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_login_time: Mapped[datetime | None] = mapped_column(UtcDateTime())

    roles: Mapped[list[Role]] = relationship(
        secondary="iam_user_role", lazy="raise", order_by="Role.name"
    )


class Role(TimestampMixin, Base):
    __tablename__ = "iam_role"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str | None] = mapped_column(String(256))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)

    permissions: Mapped[list[RolePermission]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="RolePermission.expression",
        passive_deletes=True,
    )

    @property
    def expressions(self) -> list[str]:
        return [p.expression for p in self.permissions]


class RolePermission(Base):
    __tablename__ = "iam_role_permission"

    role_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("iam_role.id", ondelete="CASCADE"), primary_key=True
    )
    expression: Mapped[str] = mapped_column(String(128), primary_key=True)


class AccessKey(Base):
    __tablename__ = "iam_access_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    access_key_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("iam_user.id", ondelete="CASCADE"), index=True
    )
    # The secret, encrypted with the instance's SecretBox; it is needed to check signatures.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ConsoleSession(Base):
    __tablename__ = "iam_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # SHA-256 (hex) of the cookie's token and of the CSRF token; the tokens are never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("iam_user.id", ondelete="CASCADE"), index=True
    )
    source_address: Mapped[str | None] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_username_event_time", "username", "event_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_time: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(BigId)
    username: Mapped[str | None] = mapped_column(String(64))
    auth_method: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    resource: Mapped[str] = mapped_column(String(512))
    source_address: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))
    trace_id: Mapped[str] = mapped_column(String(32))
