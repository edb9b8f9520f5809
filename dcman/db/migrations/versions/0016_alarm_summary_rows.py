"""Each subcloud's `GET /alarms` row kept as JSON text beside its counts (SQLite only), so that
the whole answer is a join of stored text: at 50,000 subclouds building every row in the query
was most of the call's 50 ms budget. Triggers keep the text right whoever writes the counts, the
uuid or the subcloud's name (the summary shows the name as `region_name`, as the reference does).
A later migration that rebuilds `subclouds` or `subcloud_alarms` in batch mode on SQLite drops
these triggers and must create them again (tests/test_subclouds_api.py checks they exist).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The row as views.alarm_summary shows it; `a` is the subcloud_alarms row, `s` its subcloud.
_ROW = ("json_object('region_name', s.name, 'uuid', a.uuid, 'critical_alarms', a.critical_alarms, "
        "'major_alarms', a.major_alarms, 'minor_alarms', a.minor_alarms, 'warnings', a.warnings, "
        "'cloud_status', a.cloud_status)")
_SET_ROW = (f"UPDATE subcloud_alarms SET summary_json = (SELECT {_ROW} FROM subcloud_alarms a "
            "JOIN subclouds s ON s.id = a.subcloud_id WHERE a.id = subcloud_alarms.id)")
TRIGGERS = {
    "subcloud_alarms_summary_on_insert":
        f"AFTER INSERT ON subcloud_alarms BEGIN {_SET_ROW} WHERE id = NEW.id; END",
    "subcloud_alarms_summary_on_update":
        "AFTER UPDATE OF uuid, subcloud_id, critical_alarms, major_alarms, minor_alarms, warnings, cloud_status "
        f"ON subcloud_alarms BEGIN {_SET_ROW} WHERE id = NEW.id; END",
    "subcloud_alarms_summary_on_rename":
        f"AFTER UPDATE OF name ON subclouds BEGIN {_SET_ROW} WHERE subcloud_id = NEW.id; END",
}


def upgrade() -> None:
    with op.batch_alter_table("subcloud_alarms") as batch:
        batch.add_column(sa.Column("summary_json", sa.Text, nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL builds the rows in the query (dcman.db.json_listing)
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(_SET_ROW)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("subcloud_alarms") as batch:
        batch.drop_column("summary_json")
