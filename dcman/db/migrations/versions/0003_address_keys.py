"""Sortable address keys of each subcloud's management range and subnet, for indexed overlap checks.

Revision ID: 0003
Revises: 0002
"""

import ipaddress

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    value = int(address) + (0xFFFF << 32 if address.version == 4 else 0)
    return format(value, "032x")


def upgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        for name in ("range_lo", "range_hi", "subnet_lo", "subnet_hi"):
            batch.add_column(sa.Column(name, sa.String(32)))
        batch.create_index("ix_subclouds_range_lo", ["range_lo"])
        batch.create_index("ix_subclouds_subnet_lo", ["subnet_lo"])
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, management_subnet, management_start_ip, management_end_ip FROM subclouds"))
    for subcloud_id, subnet, start, end in rows.all():
        try:
            network = ipaddress.ip_network(subnet, strict=False)
            keys = {"rl": _key(ipaddress.ip_address(start)), "rh": _key(ipaddress.ip_address(end)),
                    "sl": _key(network.network_address), "sh": _key(network.broadcast_address)}
        except ValueError:
            continue
        bind.execute(sa.text("UPDATE subclouds SET range_lo=:rl, range_hi=:rh, subnet_lo=:sl, subnet_hi=:sh "
                             "WHERE id=:id"), {**keys, "id": subcloud_id})


def downgrade() -> None:
    with op.batch_alter_table("subclouds") as batch:
        batch.drop_index("ix_subclouds_range_lo")
        batch.drop_index("ix_subclouds_subnet_lo")
        for name in ("range_lo", "range_hi", "subnet_lo", "subnet_hi"):
            batch.drop_column(name)
