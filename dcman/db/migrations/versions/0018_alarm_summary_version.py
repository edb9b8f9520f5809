"""A version number of the `GET /alarms` answer (SQLite only), raised by triggers whenever a
summary row or a subcloud's name changes, in the writer's own transaction. A site keeps the last
answer it built with the version it read first, and sends it again while the version is the
same: the audit rewrites summaries only when they change, so at 50,000 subclouds most calls skip
the 14 ms query. Like 0016's, a later batch-mode rebuild of `subclouds` or `subcloud_alarms` on
SQLite drops these triggers and must create them again (tests/test_subclouds_api.py checks).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_BUMP = "UPDATE alarm_summary_version SET version = version + 1"
TRIGGERS = {
    "alarm_summary_version_on_insert": f"AFTER INSERT ON subcloud_alarms BEGIN {_BUMP}; END",
    "alarm_summary_version_on_update":
        "AFTER UPDATE OF uuid, subcloud_id, critical_alarms, major_alarms, minor_alarms, warnings, cloud_status "
        f"ON subcloud_alarms BEGIN {_BUMP}; END",
    "alarm_summary_version_on_delete": f"AFTER DELETE ON subcloud_alarms BEGIN {_BUMP}; END",
    "alarm_summary_version_on_rename": f"AFTER UPDATE OF name ON subclouds BEGIN {_BUMP}; END",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL builds the answer in the query every time (dcman.db.json_listing)
    op.create_table("alarm_summary_version", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("version", sa.Integer, nullable=False))
    op.execute("INSERT INTO alarm_summary_version (id, version) VALUES (1, 0)")
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("alarm_summary_version")
