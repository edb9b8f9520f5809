"""The parameters of the subcloud operation under way that are not yet the subcloud's own: the
new management network of a reconfiguration (stored in the network columns only once the
subcloud has moved), or the release of a prestage. JSON; secrets in it are Fernet tokens.

Revision ID: 0015
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.add_column(sa.Column("operation_request", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_column("operation_request")
