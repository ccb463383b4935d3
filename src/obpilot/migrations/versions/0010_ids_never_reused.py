"""ids are never given twice: SQLite's tables become AUTOINCREMENT; grants on clusters that
no longer exist are dropped

SQLite gave the next row the highest id plus one, so a deleted cluster's id came back, and
the grants on `CLUSTER:<id>` and the tasks that named it passed to the next cluster given
it. On SQLite every table with an integer id is recreated AUTOINCREMENT (PostgreSQL's
sequences and MySQL's AUTO_INCREMENT never go back), and `ob_cluster`'s ids start past every
cluster id a task names. On every metadb the grants that name a cluster which no longer
exists are dropped, as forgetting a cluster now does; a downgrade does not bring them back.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES_WITH_INTEGER_IDS = (
    "audit_event",
    "compute_host_type",
    "compute_idc",
    "compute_region",
    "credential",
    "host",
    "iam_access_key",
    "iam_role",
    "iam_session",
    "iam_user",
    "ob_cluster",
    "ob_server",
    "ob_zone",
    "software_package",
    "subtask_instance",
    "subtask_log",
    "subtask_output",
    "task_instance",
)
# A grant on a cluster, or on something in it: CLUSTER:7:READ, CLUSTER:7:TENANT:*:READ.
CLUSTER_GRANT = re.compile(r"CLUSTER:([1-9][0-9]*):")

role_permission = sa.table(
    "iam_role_permission", sa.column("role_id", sa.BigInteger()), sa.column("expression")
)


def upgrade() -> None:
    _drop_grants_on_missing_clusters()
    if op.get_bind().dialect.name == "sqlite":
        _recreate_tables(autoincrement=True)
        _start_cluster_ids_past_task_history()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate_tables(autoincrement=False)


def _drop_grants_on_missing_clusters() -> None:
    bind = op.get_bind()
    clusters = {
        str(cluster_id) for cluster_id in bind.scalars(sa.text("SELECT id FROM ob_cluster"))
    }
    candidates = bind.execute(
        sa.select(role_permission.c.role_id, role_permission.c.expression).where(
            role_permission.c.expression.startswith("CLUSTER:")
        )
    )
    dangling = [
        {"role": role_id, "grant": expression}
        for role_id, expression in candidates
        if (named := CLUSTER_GRANT.match(expression)) and named.group(1) not in clusters
    ]
    if dangling:
        bind.execute(
            sa.delete(role_permission).where(
                role_permission.c.role_id == sa.bindparam("role"),
                role_permission.c.expression == sa.bindparam("grant"),
            ),
            dangling,
        )


def _recreate_tables(*, autoincrement: bool) -> None:
    # Each table is copied to a new one, the old one dropped, the copy renamed. With foreign
    # keys enforced, dropping a table would delete (ON DELETE CASCADE) or refuse for the
    # rows that reference it; Alembic's connection leaves them off, SQLite's default.
    if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("migration 0010 needs SQLite's foreign keys off (PRAGMA foreign_keys)")
    for name in TABLES_WITH_INTEGER_IDS:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def _start_cluster_ids_past_task_history() -> None:
    """The copied rows set each table's counter to its highest id; a cluster forgotten
    before this migration with the highest id then would still come back. Its tasks name
    it: the next cluster's id is past every id they name."""
    bind = op.get_bind()
    named = bind.scalar(sa.text("SELECT MAX(cluster_id) FROM task_instance"))
    if named is None:
        return
    counter = bind.scalar(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'ob_cluster'"))
    if counter is None:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('ob_cluster', :seq)"),
            {"seq": named},
        )
    elif counter < named:
        bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'ob_cluster'"),
            {"seq": named},
        )
