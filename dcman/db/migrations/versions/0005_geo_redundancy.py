"""Geo-redundancy: system peers, subcloud peer groups and peer group associations.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_peers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("peer_uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("peer_name", sa.String(255), nullable=False, unique=True),
        sa.Column("manager_endpoint", sa.String(255), nullable=False),
        sa.Column("manager_username", sa.String(255), nullable=False),
        sa.Column("manager_password", sa.Text, nullable=False),
        sa.Column("peer_controller_gateway_address", sa.String(64), nullable=False),
        sa.Column("administrative_state", sa.String(16), nullable=False),
        sa.Column("heartbeat_interval", sa.Integer, nullable=False),
        sa.Column("heartbeat_failure_threshold", sa.Integer, nullable=False),
        sa.Column("heartbeat_failure_policy", sa.String(16), nullable=False),
        sa.Column("heartbeat_maintenance_timeout", sa.Integer, nullable=False),
        sa.Column("availability_state", sa.String(16), nullable=False),
        sa.Column("heartbeat_failures", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime),
    )
    op.create_table(
        "subcloud_peer_groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("peer_group_name", sa.String(255), nullable=False, unique=True),
        sa.Column("group_priority", sa.Integer, nullable=False),
        sa.Column("group_state", sa.String(16), nullable=False),
        sa.Column("max_subcloud_rehoming", sa.Integer, nullable=False),
        sa.Column("system_leader_id", sa.String(36), nullable=False),
        sa.Column("system_leader_name", sa.String(255), nullable=False),
        sa.Column("migration_status", sa.String(32)),
        sa.Column("needs_audit", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime),
    )
    op.create_table(
        "peer_group_associations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("peer_group_id", sa.Integer, sa.ForeignKey("subcloud_peer_groups.id"), nullable=False, index=True),
        sa.Column("system_peer_id", sa.Integer, sa.ForeignKey("system_peers.id"), nullable=False, index=True),
        sa.Column("peer_group_priority", sa.Integer, nullable=False),
        sa.Column("association_type", sa.String(16), nullable=False),
        sa.Column("sync_status", sa.String(16), nullable=False),
        sa.Column("sync_message", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime),
        sa.UniqueConstraint("peer_group_id", "system_peer_id", name="uq_association_group_peer"),
    )


def downgrade() -> None:
    for name in ("peer_group_associations", "subcloud_peer_groups", "system_peers"):
        op.drop_table(name)
