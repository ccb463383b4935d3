"""the machine and boot id of a lease's holder

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subtask_instance") as batch_op:
        batch_op.add_column(sa.Column("lease_host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("lease_boot", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subtask_instance") as batch_op:
        batch_op.drop_column("lease_boot")
        batch_op.drop_column("lease_host")
