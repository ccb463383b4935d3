"""a credential belongs to the user who made it; names are unique per owner

Credentials made before have no owner: only holders of CREDENTIAL:*:USE (ADMIN) see and use
them.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# A batch on SQLite recreates the table: keep it AUTOINCREMENT (0010).
SQLITE_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("credential", table_kwargs=SQLITE_AUTOINCREMENT) as batch_op:
        batch_op.add_column(
            sa.Column(
                "owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.drop_constraint("uq_credential_name", type_="unique")
        batch_op.create_unique_constraint("uq_credential_owner_id_name", ["owner_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("credential", table_kwargs=SQLITE_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint("uq_credential_owner_id_name", type_="unique")
        batch_op.create_unique_constraint("uq_credential_name", ["name"])
        batch_op.drop_column("owner_id")
