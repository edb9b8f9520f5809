"""A counter on each subcloud that every reset of its endpoint statuses bumps, so that the
audit, which keeps the statuses it last saw in memory, knows when another writer changed them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.add_column(sa.Column("endpoints_version", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_column("endpoints_version")
