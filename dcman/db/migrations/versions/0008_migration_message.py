"""What a running peer-group migration waits for: a peer site that neither answers nor has
been declared unavailable yet (shown in the group's status, cleared when the wait ends).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subcloud_peer_groups") as batch:
        batch.add_column(sa.Column("migration_message", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subcloud_peer_groups") as batch:
        batch.drop_column("migration_message")
