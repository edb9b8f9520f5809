"""The secrets found at any depth of a subcloud's bootstrap values, install values and deploy
config (dcman.domain.secrets), kept apart from those documents as Fernet tokens, so that the
documents themselves can be shown, logged and copied to a peer. And the built-in Default
group gets the creation time 0001 did not give it (the API showed `created-at: null`).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.add_column(sa.Column("bootstrap_secrets", sa.Text, nullable=True))
        batch.add_column(sa.Column("install_secrets", sa.Text, nullable=True))
        batch.add_column(sa.Column("config_secrets", sa.Text, nullable=True))
    op.execute("UPDATE subcloud_group SET created_at = CURRENT_TIMESTAMP WHERE created_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_column("config_secrets")
        batch.drop_column("install_secrets")
        batch.drop_column("bootstrap_secrets")
