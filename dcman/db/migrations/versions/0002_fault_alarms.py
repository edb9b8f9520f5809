"""Fault alarms raised by the site (280.001 subcloud offline, 280.002 out of sync).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fault_alarms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alarm_id", sa.String(16), nullable=False),
        sa.Column("entity_instance_id", sa.String(512), nullable=False),
        sa.Column("subcloud_id", sa.Integer, sa.ForeignKey("subclouds.id", ondelete="CASCADE"), index=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("reason_text", sa.String(1024), nullable=False),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.UniqueConstraint("alarm_id", "entity_instance_id", name="uq_fault_alarm"),
    )


def downgrade() -> None:
    op.drop_table("fault_alarms")
