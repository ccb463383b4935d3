"""a create's clientToken is its creator's own; its request digest is keyed

The digests stored before were unsalted SHA-256 of bodies holding root's password: they
are dropped (a repeated old token is then a conflict, never an answer).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE ob_cluster SET request_digest = NULL"))
    with op.batch_alter_table("ob_cluster") as batch_op:
        batch_op.drop_constraint("uq_ob_cluster_client_token", type_="unique")
        batch_op.create_unique_constraint(
            "uq_ob_cluster_creator_client_token", ["creator", "client_token"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ob_cluster") as batch_op:
        batch_op.drop_constraint("uq_ob_cluster_creator_client_token", type_="unique")
        batch_op.create_unique_constraint("uq_ob_cluster_client_token", ["client_token"])
