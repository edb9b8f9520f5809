"""The deploy plan (steps still to run) and the running phase's progress.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.add_column(sa.Column("deploy_plan", sa.Text))
        batch.add_column(sa.Column("deploy_progress", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_column("deploy_progress")
        batch.drop_column("deploy_plan")
