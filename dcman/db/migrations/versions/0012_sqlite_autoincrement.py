"""On SQLite, subcloud and association ids are never reused (AUTOINCREMENT), as PostgreSQL's
sequences and the reference's never are: a deleted subcloud's id must not name the next one,
or a script or a peer holding the old id would act on another subcloud.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Rows that reference subclouds with ON DELETE CASCADE: set aside while the table is rebuilt,
# since dropping the old table would delete them.
SUBCLOUD_CHILDREN = ("subcloud_status", "subcloud_alarms", "fault_alarms")


def _rebuild(table: str, autoincrement: bool, children: tuple[str, ...] = ()) -> None:
    for child in children:
        op.execute(f"CREATE TEMP TABLE kept_{child} AS SELECT * FROM {child}")
        op.execute(f"DELETE FROM {child}")
    with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass
    for child in children:
        op.execute(f"INSERT INTO {child} SELECT * FROM kept_{child}")
        op.execute(f"DROP TABLE kept_{child}")


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    _rebuild("subclouds", True, SUBCLOUD_CHILDREN)
    _rebuild("peer_group_associations", True)


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    _rebuild("peer_group_associations", False)
    _rebuild("subclouds", False, SUBCLOUD_CHILDREN)
