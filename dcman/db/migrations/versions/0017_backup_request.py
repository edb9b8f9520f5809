"""The backup or restore a subcloud was asked for (its options as JSON, the password it came
with encrypted), kept until the backup loop has carried it out, so that a restart of the site
can pick up a backup still at `initial`.

Revision ID: 0017
Revises: 0016 (numbered after the migrations that reached main first, so that a database
already at 0016 gets this one too)
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.add_column(sa.Column("backup_request", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_column("backup_request")
