"""cluster operation lock

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ob_cluster") as batch_op:
        batch_op.add_column(
            sa.Column(
                "operation_task_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ob_cluster_operation_task_id_task_instance"),
            "task_instance",
            ["operation_task_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("ob_cluster") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_ob_cluster_operation_task_id_task_instance"), type_="foreignkey"
        )
        batch_op.drop_column("operation_task_id")
