"""hosts, credentials and process settings

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import obpilot.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("passphrase_encrypted", sa.Text(), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential")),
        sa.UniqueConstraint("name", name=op.f("uq_credential_name")),
    )
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host_key", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_host_credential_id_credential"), "credential", ["credential_id"], ["id"]
        )
    with op.batch_alter_table("ob_cluster", schema=None) as batch_op:
        batch_op.add_column(sa.Column("root_password_encrypted", sa.Text(), nullable=True))
    with op.batch_alter_table("ob_server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("binary_path", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("parameters", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ob_server", schema=None) as batch_op:
        batch_op.drop_column("parameters")
        batch_op.drop_column("binary_path")
    with op.batch_alter_table("ob_cluster", schema=None) as batch_op:
        batch_op.drop_column("root_password_encrypted")
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_host_credential_id_credential"), type_="foreignkey")
        batch_op.drop_column("host_key")
    op.drop_table("credential")
