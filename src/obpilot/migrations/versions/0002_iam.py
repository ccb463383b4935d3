"""identity and access

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import obpilot.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# OCP's default roles as of this revision (a copy, so that later code changes cannot alter
# what this migration did; tests/iam checks it against obpilot.iam.permissions).
DEFAULT_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ADMIN": ("System administrator: everything", ("**",)),
    "ALARM_MANAGER": (
        "Manage alarms",
        ("ALARM:*:*", "CLUSTER:*:READ", "TENANT:*:READ", "HOST:*:READ", "USER:*:READ"),
    ),
    "ALARM_VIEWER": (
        "View alarms",
        ("ALARM:*:READ", "CLUSTER:*:READ", "TENANT:*:READ", "HOST:*:READ", "USER:*:READ"),
    ),
    "AUDIT_VIEWER": ("View the audit log", ("AUDIT:*:READ",)),
    "BACKUP_MANAGER": (
        "Manage backup and recovery",
        (
            "CLUSTER:*:BACKUP:*:*",
            "CLUSTER:*:READ",
            "CLUSTER:*:TENANT:*:READ",
            "HOST:*:READ",
            "ALARM:*:READ",
            "TASK:*:*",
            "PACKAGE:*:*",
        ),
    ),
    "CLUSTER_MANAGER": (
        "Manage clusters",
        (
            "CLUSTER:*:*",
            "HOST:*:*",
            "TASK:*:*",
            "ALARM:*:*",
            "USER:*:READ",
            "PACKAGE:*:*",
            "OBPROXY:*:*",
        ),
    ),
    "CLUSTER_VIEWER": (
        "View clusters",
        (
            "CLUSTER:*:READ",
            "HOST:*:READ",
            "TASK:*:READ",
            "ALARM:*:READ",
            "PACKAGE:*:READ",
            "OBPROXY:*:READ",
        ),
    ),
    "HOST_MANAGER": ("Manage hosts", ("HOST:*:*", "PACKAGE:*:*")),
    "HOST_VIEWER": ("View hosts", ("HOST:*:READ", "PACKAGE:*:READ")),
    "INSPECTION_MANAGER": ("Manage inspections", ("INSPECTION:*:*",)),
    "OBPROXY_MANAGER": (
        "Manage OBProxy",
        ("OBPROXY:*:*", "PACKAGE:*:*", "CLUSTER:*:READ", "HOST:*:READ"),
    ),
    "OBPROXY_VIEWER": (
        "View OBProxy",
        ("OBPROXY:*:READ", "PACKAGE:*:READ", "CLUSTER:*:READ", "HOST:*:READ"),
    ),
    "PACKAGE_MANAGER": ("Manage software packages", ("PACKAGE:*:*",)),
    "PACKAGE_VIEWER": ("View software packages", ("PACKAGE:*:READ",)),
    "PROFILE": ("Log on and manage one's own profile", ("PROFILE:*:*",)),
    "PROPERTY_MANAGER": ("Manage system parameters", ("PROPERTY:*:*",)),
    "ROLE_MANAGER": ("Manage roles", ("ROLE:*:*",)),
    "TASK_MANAGER": ("Manage tasks", ("TASK:*:*",)),
    "TENANT_MANAGER": (
        "Manage tenants",
        (
            "CLUSTER:*:TENANT:*:*",
            "CLUSTER:*:READ",
            "HOST:*:READ",
            "TASK:*:READ",
            "ALARM:*:READ",
            "OBPROXY:*:READ",
        ),
    ),
    "TENANT_VIEWER": (
        "View tenants",
        (
            "CLUSTER:*:TENANT:*:READ",
            "CLUSTER:*:READ",
            "HOST:*:READ",
            "TASK:*:READ",
            "ALARM:*:READ",
            "OBPROXY:*:READ",
        ),
    ),
    "USER_MANAGER": ("Manage users", ("USER:*:*", "ROLE:*:READ")),
}


def upgrade() -> None:
    op.create_table(
        "iam_user",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("email", sa.String(length=128), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("last_login_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_user")),
        sa.UniqueConstraint("username", name=op.f("uq_iam_user_username")),
    )
    op.create_table(
        "iam_role",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_role")),
        sa.UniqueConstraint("name", name=op.f("uq_iam_role_name")),
    )
    op.create_table(
        "iam_role_permission",
        sa.Column("role_id", BIG_ID, nullable=False),
        sa.Column("expression", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["iam_role.id"],
            name=op.f("fk_iam_role_permission_role_id_iam_role"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("role_id", "expression", name=op.f("pk_iam_role_permission")),
    )
    op.create_table(
        "iam_user_role",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("role_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["iam_role.id"],
            name=op.f("fk_iam_user_role_role_id_iam_role"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_user.id"],
            name=op.f("fk_iam_user_role_user_id_iam_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_iam_user_role")),
    )
    with op.batch_alter_table("iam_user_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_iam_user_role_role_id"), ["role_id"], unique=False)

    op.create_table(
        "iam_access_key",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("access_key_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_user.id"],
            name=op.f("fk_iam_access_key_user_id_iam_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_access_key")),
        sa.UniqueConstraint("access_key_id", name=op.f("uq_iam_access_key_access_key_id")),
    )
    with op.batch_alter_table("iam_access_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_iam_access_key_user_id"), ["user_id"], unique=False)

    op.create_table(
        "iam_session",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("expires_at", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_user.id"],
            name=op.f("fk_iam_session_user_id_iam_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_iam_session_token_hash")),
    )
    with op.batch_alter_table("iam_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_iam_session_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_iam_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "audit_event",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("auth_method", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("resource", sa.String(length=512), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_event_time"), ["event_time"], unique=False)
        batch_op.create_index(
            "ix_audit_event_username_event_time", ["username", "event_time"], unique=False
        )

    _insert_default_roles()


def _insert_default_roles() -> None:
    now = datetime.now(UTC)
    role = sa.table(
        "iam_role",
        sa.column("id", BIG_ID),
        sa.column("name", sa.String()),
        sa.column("description", sa.String()),
        sa.column("builtin", sa.Boolean()),
        sa.column("create_time", obpilot.db.base.UtcDateTime()),
        sa.column("update_time", obpilot.db.base.UtcDateTime()),
    )
    permission = sa.table(
        "iam_role_permission", sa.column("role_id", BIG_ID), sa.column("expression", sa.String())
    )
    connection = op.get_bind()
    connection.execute(
        role.insert(),
        [
            {
                "name": name,
                "description": description,
                "builtin": True,
                "create_time": now,
                "update_time": now,
            }
            for name, (description, _) in DEFAULT_ROLES.items()
        ],
    )
    # Ids come from the database (explicit ids would leave PostgreSQL's sequence behind).
    role_ids = {name: id_ for name, id_ in connection.execute(sa.select(role.c.name, role.c.id))}
    connection.execute(
        permission.insert(),
        [
            {"role_id": role_ids[name], "expression": expression}
            for name, (_, expressions) in DEFAULT_ROLES.items()
            for expression in expressions
        ],
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; MySQL refuses to drop an index an FK still uses.
    op.drop_table("audit_event")
    op.drop_table("iam_session")
    op.drop_table("iam_access_key")
    op.drop_table("iam_user_role")
    op.drop_table("iam_role_permission")
    op.drop_table("iam_role")
    op.drop_table("iam_user")
