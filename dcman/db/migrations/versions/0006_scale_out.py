"""Scale-out: the process registry and the shard leases that divide subclouds between processes.

Revision ID: 0006
Revises: 0005
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SHARDS = 64  # dcman.domain.cluster.SHARDS when this revision was written
# The holder of every lease before scale-out: "a process that is gone", so that the first
# process to take the leases recovers the steps a crash of the old single process cut short.
BEFORE_LEASES = "00000000-0000-0000-0000-000000000000"


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("bind", sa.String(255), nullable=False),
        sa.Column("roles", sa.String(64), nullable=False),
        sa.Column("leads", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False, index=True),
    )
    leases = op.create_table(
        "shard_leases",
        sa.Column("shard", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("holder", sa.String(36)),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    long_ago = datetime(2000, 1, 1)
    op.bulk_insert(leases, [{"shard": shard, "kind": kind, "holder": BEFORE_LEASES, "expires_at": long_ago}
                            for kind in ("audit", "deploy") for shard in range(SHARDS)])


def downgrade() -> None:
    op.drop_table("shard_leases")
    op.drop_table("processes")
