"""the process that holds a lease: its machine, pid and start time

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subtask_instance") as batch_op:
        batch_op.add_column(sa.Column("lease_machine", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("lease_pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lease_pid_started", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subtask_instance") as batch_op:
        batch_op.drop_column("lease_pid_started")
        batch_op.drop_column("lease_pid")
        batch_op.drop_column("lease_machine")
