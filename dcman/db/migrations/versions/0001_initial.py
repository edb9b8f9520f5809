"""Initial schema: site identity, subclouds, their statuses and alarm summaries, groups, accounts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime), sa.Column("updated_at", sa.DateTime)]


def upgrade() -> None:
    op.create_table(
        "site",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    group = op.create_table(
        "subcloud_group",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("update_apply_type", sa.String(16), nullable=False),
        sa.Column("max_parallel_subclouds", sa.Integer, nullable=False),
        *_timestamps(),
    )
    # The built-in group, id 1 (lifecycle reference §1.3).
    op.bulk_insert(
        group,
        [
            {
                "id": 1,
                "name": "Default",
                "description": "Default Subcloud Group",
                "update_apply_type": "parallel",
                "max_parallel_subclouds": 2,
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('subcloud_group_id_seq', 1)")
    op.create_table(
        "subclouds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("region_name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.String(255)),
        sa.Column("location", sa.String(255)),
        sa.Column("software_version", sa.String(255), nullable=False),
        sa.Column("management_state", sa.String(32), nullable=False, index=True),
        sa.Column("availability_status", sa.String(32), nullable=False, index=True),
        sa.Column("deploy_status", sa.String(255), nullable=False, index=True),
        sa.Column("backup_status", sa.String(255)),
        sa.Column("backup_datetime", sa.DateTime),
        sa.Column("error_description", sa.String(2048), nullable=False),
        sa.Column("management_subnet", sa.String(255), nullable=False),
        sa.Column("management_start_ip", sa.String(64), nullable=False),
        sa.Column("management_end_ip", sa.String(64), nullable=False),
        sa.Column("management_gateway_ip", sa.String(64), nullable=False),
        sa.Column("systemcontroller_gateway_ip", sa.String(64), nullable=False),
        sa.Column("external_oam_floating_address", sa.String(64)),
        sa.Column("openstack_installed", sa.Boolean, nullable=False),
        sa.Column("audit_fail_count", sa.Integer, nullable=False),
        sa.Column("first_identity_sync_complete", sa.Boolean, nullable=False),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("subcloud_group.id"), nullable=False, index=True),
        sa.Column("peer_group_id", sa.Integer, index=True),
        sa.Column("rehome_data", sa.Text),
        sa.Column("rehomed", sa.Boolean, nullable=False),
        sa.Column("prestage_status", sa.String(255)),
        sa.Column("prestage_versions", sa.String(255)),
        sa.Column("data_install", sa.Text),
        sa.Column("data_upgrade", sa.Text),
        sa.Column("bootstrap_values", sa.Text),
        sa.Column("bootstrap_address", sa.String(255)),
        sa.Column("deploy_config", sa.Text),
        sa.Column("sysadmin_password", sa.Text),
        sa.Column("bmc_password", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime),
    )
    op.create_table(
        "subcloud_status",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subcloud_id", sa.Integer, sa.ForeignKey("subclouds.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("endpoint_type", sa.String(64), nullable=False),
        sa.Column("sync_status", sa.String(32), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("subcloud_id", "endpoint_type", name="uq_subcloud_status_endpoint"),
    )
    op.create_table(
        "subcloud_alarms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("subcloud_id", sa.Integer, sa.ForeignKey("subclouds.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("critical_alarms", sa.Integer, nullable=False),
        sa.Column("major_alarms", sa.Integer, nullable=False),
        sa.Column("minor_alarms", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("cloud_status", sa.String(32), nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    for name in ("tokens", "accounts", "subcloud_alarms", "subcloud_status", "subclouds", "subcloud_group", "site"):
        op.drop_table(name)
