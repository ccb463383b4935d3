"""task engine: task_instance, subtask_instance, subtask_dependency, subtask_output,
subtask_log

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import obpilot.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_instance",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("template", sa.String(length=128), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("cluster_id", sa.BigInteger(), nullable=True),
        sa.Column("cluster_name", sa.String(length=128), nullable=True),
        sa.Column("ob_cluster_id", sa.BigInteger(), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("host_id", sa.BigInteger(), nullable=True),
        sa.Column("creator_id", sa.BigInteger(), nullable=True),
        sa.Column("creator_name", sa.String(length=64), nullable=True),
        sa.Column("executor", sa.String(length=128), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("has_outputs", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("start_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("finish_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instance")),
    )
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_instance_cluster_id"), ["cluster_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_instance_status"), ["status"], unique=False)

    op.create_table(
        "subtask_instance",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("class_name", sa.String(length=256), nullable=False),
        sa.Column("node_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("run_time", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("executor", sa.String(length=128), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_deadline", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("parallel_idx", sa.Integer(), nullable=False),
        sa.Column("parallel_key", sa.String(length=128), nullable=True),
        sa.Column("prohibit_rollback", sa.Boolean(), nullable=False),
        sa.Column("resumable", sa.Boolean(), nullable=False),
        sa.Column("upstreams_left", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("start_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("finish_time", obpilot.db.base.UtcDateTime(), nullable=True),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("update_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task_instance.id"],
            name=op.f("fk_subtask_instance_task_id_task_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subtask_instance")),
    )
    with op.batch_alter_table("subtask_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subtask_instance_lease_token"), ["lease_token"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subtask_instance_status"), ["status"], unique=False)
        batch_op.create_index(
            "ix_subtask_instance_task_id_status", ["task_id", "status"], unique=False
        )

    op.create_table(
        "subtask_dependency",
        sa.Column(
            "parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("child_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["subtask_instance.id"],
            name=op.f("fk_subtask_dependency_child_id_subtask_instance"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["subtask_instance.id"],
            name=op.f("fk_subtask_dependency_parent_id_subtask_instance"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task_instance.id"],
            name=op.f("fk_subtask_dependency_task_id_task_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("parent_id", "child_id", name=op.f("pk_subtask_dependency")),
    )
    with op.batch_alter_table("subtask_dependency", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subtask_dependency_child_id"), ["child_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subtask_dependency_task_id"), ["task_id"], unique=False
        )

    op.create_table(
        "subtask_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "subtask_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("run_time", sa.Integer(), nullable=False),
        sa.Column("create_time", obpilot.db.base.UtcDateTime(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subtask_log")),
    )
    with op.batch_alter_table("subtask_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subtask_log_subtask_id_run_time", ["subtask_id", "run_time"], unique=False
        )
        batch_op.create_index("ix_subtask_log_task_id_id", ["task_id", "id"], unique=False)

    op.create_table(
        "subtask_output",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "subtask_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("parallel_idx", sa.Integer(), nullable=False),
        sa.Column("output_key", sa.String(length=128), nullable=False),
        sa.Column("is_list", sa.Boolean(), nullable=False),
        sa.Column("output_value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subtask_output")),
    )
    with op.batch_alter_table("subtask_output", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subtask_output_subtask_id_output_key", ["subtask_id", "output_key"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_subtask_output_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; MySQL refuses to drop an index an FK still uses.
    for table in (
        "subtask_output",
        "subtask_log",
        "subtask_dependency",
        "subtask_instance",
        "task_instance",
    ):
        op.drop_table(table)
