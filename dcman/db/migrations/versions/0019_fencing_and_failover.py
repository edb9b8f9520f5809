"""Automatic failover: the fencing epoch this site holds for each subcloud (the epoch its
last rehome claim was granted by the subcloud's agent), and on each peer group the
sysadmin password a standby site may fail the group over with (a Fernet token) and the
sites protecting the group with their priorities (JSON, sent by the primary's sync).

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.add_column(sa.Column("fencing_epoch", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("subcloud_peer_groups") as batch:
        batch.add_column(sa.Column("failover_password", sa.Text, nullable=True))
        batch.add_column(sa.Column("protection", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subcloud_peer_groups") as batch:
        batch.drop_column("protection")
        batch.drop_column("failover_password")
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_column("fencing_epoch")
