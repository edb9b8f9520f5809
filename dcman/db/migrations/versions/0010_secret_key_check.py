"""A value encrypted with the site's secret key, kept with the site's identity, so that a
process started with another DCMAN_SECRET_KEY refuses to start instead of failing every
deploy. Databases from before this revision get it at the next start (dcman/site.py).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("site") as batch:
        batch.add_column(sa.Column("secret_key_check", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("site") as batch:
        batch.drop_column("secret_key_check")
