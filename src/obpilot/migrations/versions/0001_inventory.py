"""inventory: hosts, clusters, zones, servers

Revision ID: 0001
Revises:
Create Date: 2026-11-26 18:00:34.912552
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import obpilot.db.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("inner_ip_address", sa.String(length=64), nullable=False),
        sa.Column("ssh_port", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "credential_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host")),
        sa.UniqueConstraint(
            "inner_ip_address", "ssh_port", name=op.f("uq_host_inner_ip_address_ssh_port")
        ),
        sa.UniqueConstraint("name", name=op.f("uq_host_name")),
    )
    op.create_table(
        "ob_cluster",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "ob_cluster_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ob_version", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("creator", sa.String(length=64), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ob_cluster")),
        sa.UniqueConstraint("name", name=op.f("uq_ob_cluster_name")),
    )
    with op.batch_alter_table("ob_cluster", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ob_cluster_status"), ["status"], unique=False)

    op.create_table(
        "ob_zone",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "cluster_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("idc_name", sa.String(length=128), nullable=True),
        sa.Column("region_name", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["ob_cluster.id"],
            name=op.f("fk_ob_zone_cluster_id_ob_cluster"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ob_zone")),
        sa.UniqueConstraint("cluster_id", "name", name=op.f("uq_ob_zone_cluster_id_name")),
    )
    op.create_table(
        "ob_server",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "cluster_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("zone_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("host_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("sql_port", sa.Integer(), nullable=False),
        sa.Column("home_path", sa.String(length=512), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("with_rootserver", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("start_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("stop_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["ob_cluster.id"],
            name=op.f("fk_ob_server_cluster_id_ob_cluster"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], name=op.f("fk_ob_server_host_id_host")),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["ob_zone.id"],
            name=op.f("fk_ob_server_zone_id_ob_zone"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ob_server")),
        sa.UniqueConstraint("host_id", "sql_port", name=op.f("uq_ob_server_host_id_sql_port")),
    )
    with op.batch_alter_table("ob_server", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ob_server_cluster_id"), ["cluster_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; MySQL refuses to drop an index an FK still uses.
    op.drop_table("ob_server")
    op.drop_table("ob_zone")
    op.drop_table("ob_cluster")
    op.drop_table("host")
