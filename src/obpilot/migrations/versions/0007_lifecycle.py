"""the compute catalog, software packages and created clusters

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import obpilot.db.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_host_type",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_host_type")),
        sa.UniqueConstraint("name", name=op.f("uq_compute_host_type_name")),
    )
    op.create_table(
        "compute_region",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_region")),
        sa.UniqueConstraint("name", name=op.f("uq_compute_region_name")),
    )
    op.create_table(
        "software_package",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("build_number", sa.String(length=128), nullable=True),
        sa.Column("operating_system", sa.String(length=64), nullable=True),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("creator", sa.String(length=64), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_software_package")),
        sa.UniqueConstraint("file_name", name=op.f("uq_software_package_file_name")),
        sa.UniqueConstraint("sha1", name=op.f("uq_software_package_sha1")),
    )
    with op.batch_alter_table("software_package", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_software_package_name"), ["name"], unique=False)

    op.create_table(
        "compute_idc",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column(
            "region_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_id"],
            ["compute_region.id"],
            name=op.f("fk_compute_idc_region_id_compute_region"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_idc")),
        sa.UniqueConstraint("name", name=op.f("uq_compute_idc_name")),
    )
    with op.batch_alter_table("compute_idc", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_compute_idc_region_id"), ["region_id"], unique=False)

    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("idc_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "type_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("operating_system", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("architecture", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_host_idc_id"), ["idc_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_host_type_id"), ["type_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_host_idc_id_compute_idc"), "compute_idc", ["idc_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_host_type_id_compute_host_type"),
            "compute_host_type",
            ["type_id"],
            ["id"],
        )

    with op.batch_alter_table("ob_cluster", schema=None) as batch_op:
        # Every cluster registered before now was taken over.
        batch_op.add_column(
            sa.Column("origin", sa.String(length=16), nullable=False, server_default="TAKEN_OVER")
        )
        batch_op.add_column(sa.Column("full_version", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("client_token", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "create_task_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_ob_cluster_client_token"), ["client_token"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ob_cluster_create_task_id_task_instance"),
            "task_instance",
            ["create_task_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("ob_server", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "package_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("data_path", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("log_path", sa.String(length=512), nullable=True))
        batch_op.add_column(
            sa.Column(
                "created_by_task_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_index(batch_op.f("ix_ob_server_package_id"), ["package_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_ob_server_package_id_software_package"),
            "software_package",
            ["package_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("ob_server", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_ob_server_package_id_software_package"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_ob_server_package_id"))
        batch_op.drop_column("created_by_task_id")
        batch_op.drop_column("log_path")
        batch_op.drop_column("data_path")
        batch_op.drop_column("package_id")

    with op.batch_alter_table("ob_cluster", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_ob_cluster_create_task_id_task_instance"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_ob_cluster_client_token"), type_="unique")
        batch_op.drop_column("create_task_id")
        batch_op.drop_column("request_digest")
        batch_op.drop_column("client_token")
        batch_op.drop_column("full_version")
        batch_op.drop_column("origin")

    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_host_type_id_compute_host_type"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_host_idc_id_compute_idc"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_host_type_id"))
        batch_op.drop_index(batch_op.f("ix_host_idc_id"))
        batch_op.drop_column("architecture")
        batch_op.drop_column("operating_system")
        batch_op.drop_column("type_id")
        batch_op.drop_column("idc_id")

    op.drop_table("compute_idc")
    op.drop_table("software_package")
    op.drop_table("compute_region")
    op.drop_table("compute_host_type")
