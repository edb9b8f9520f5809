"""The token a token-method token was made from, so that revoking a token also revokes every
token made from it (a stolen token cannot outlive its revocation through a copy).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("parent_digest", sa.String(64), nullable=True))
        batch.create_index("ix_tokens_parent_digest", ["parent_digest"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_parent_digest")
        batch.drop_column("parent_digest")
