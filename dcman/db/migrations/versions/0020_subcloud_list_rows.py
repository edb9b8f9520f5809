"""Each subcloud's row of the unpaged `GET /v1.0/subclouds` kept as JSON text (SQLite), so
that the list of 50,000 subclouds is a join of stored text instead of 1.2 s of CPU building
every row. The triggers that keep the rows are not made here: they are generated from the
list's own expression and made (again) at every start-up where they differ from it
(dcman.db.json_listing.ensure_kept_list_rows), so a release that changes the list's fields
cannot leave stale rows behind.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("subcloud_list_rows",
                    sa.Column("subcloud_id", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("body", sa.Text, nullable=False))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete", "status_insert", "status_update", "status_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS subcloud_list_row_on_{name}")
    op.drop_table("subcloud_list_rows")
