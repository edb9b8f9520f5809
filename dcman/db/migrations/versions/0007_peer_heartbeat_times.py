"""When each system peer was last sent a heartbeat and when one was last answered, stored so
that every process (the dashboard of any API process) sees what the peer monitor saw.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("system_peers") as batch:
        batch.add_column(sa.Column("last_heartbeat_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("last_answered_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("system_peers") as batch:
        batch.drop_column("last_answered_at")
        batch.drop_column("last_heartbeat_at")
