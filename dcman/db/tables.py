"""The schema as SQLAlchemy Core tables. Alembic migrations create it; keep both in step."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

site = Table(
    "site",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    # A known text encrypted with the site's secret key: a process whose key cannot read it
    # refuses to start (dcman/site.py).
    Column("secret_key_check", Text),
)

subcloud_group = Table(
    "subcloud_group",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(255), nullable=False),
    Column("update_apply_type", String(16), nullable=False),
    Column("max_parallel_subclouds", Integer, nullable=False),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
)

subclouds = Table(
    "subclouds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("region_name", String(255), nullable=False, unique=True),
    Column("description", String(255)),
    Column("location", String(255)),
    Column("software_version", String(255), nullable=False),
    Column("management_state", String(32), nullable=False, index=True),
    Column("availability_status", String(32), nullable=False, index=True),
    Column("deploy_status", String(255), nullable=False, index=True),
    Column("backup_status", String(255)),
    Column("backup_datetime", DateTime),
    Column("error_description", String(2048), nullable=False),
    Column("management_subnet", String(255), nullable=False),
    Column("management_start_ip", String(64), nullable=False),
    Column("management_end_ip", String(64), nullable=False),
    Column("management_gateway_ip", String(64), nullable=False),
    Column("systemcontroller_gateway_ip", String(64), nullable=False),
    Column("external_oam_floating_address", String(64)),
    # Sortable keys of the management range and subnet (see subclouds.address_key), so that
    # the overlap checks of an add look at a handful of rows, not the whole fleet.
    Column("range_lo", String(32), index=True),
    Column("range_hi", String(32)),
    Column("subnet_lo", String(32), index=True),
    Column("subnet_hi", String(32)),
    Column("openstack_installed", Boolean, nullable=False, default=False),
    Column("audit_fail_count", Integer, nullable=False, default=0),
    # Bumped by every reset of the subcloud's endpoint statuses (subclouds.reset_endpoints):
    # the audit drops the statuses it keeps in memory when it sees another value.
    Column("endpoints_version", Integer, nullable=False, default=0, server_default="0"),
    Column("first_identity_sync_complete", Boolean, nullable=False, default=False),
    Column("group_id", Integer, ForeignKey("subcloud_group.id"), nullable=False, index=True),
    # The peer-group table comes with geo-redundancy; its foreign key is added then.
    Column("peer_group_id", Integer, index=True),
    Column("rehome_data", Text),
    Column("rehomed", Boolean, nullable=False, default=False),
    Column("prestage_status", String(255)),
    Column("prestage_versions", String(255)),
    Column("data_install", Text),
    Column("data_upgrade", Text),
    # What the deploy phases need later; secrets are Fernet tokens, never clear text.
    Column("bootstrap_values", Text),
    Column("bootstrap_address", String(255)),
    Column("deploy_config", Text),
    # The deploy steps still to run (JSON list of dcman.domain.deploy.Step), and the
    # running phase's progress as its agent last reported it.
    Column("deploy_plan", Text),
    Column("deploy_progress", Integer),
    Column("sysadmin_password", Text),
    Column("bmc_password", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    # The secrets taken out of bootstrap_values, data_install and deploy_config at any depth
    # (dcman.domain.secrets), for the subcloud's agent only: Fernet tokens of [path, value] lists.
    Column("bootstrap_secrets", Text),
    Column("install_secrets", Text),
    Column("config_secrets", Text),
    # The backup create or restore under way (dcman.services.backup): its options as JSON.
    Column("backup_request", Text),
    # A network reconfiguration's new network or a prestage's release while it runs (JSON;
    # secrets as Fernet tokens): dcman.domain.subcloud_ops.
    Column("operation_request", Text),
    # The fencing epoch the subcloud's agent granted this site's last rehome claim (0: never
    # claimed); sent with every managing request, which the agent refuses once it is older.
    Column("fencing_epoch", Integer, nullable=False, default=0, server_default="0"),
    sqlite_autoincrement=True,  # an id never names two subclouds (migration 0012)
)

# Each subcloud's row of the unpaged `GET /subclouds` as JSON text, kept by SQLite triggers
# (dcman.db.json_listing.ensure_kept_list_rows; unused on PostgreSQL, which builds the rows).
subcloud_list_rows = Table(
    "subcloud_list_rows",
    metadata,
    Column("subcloud_id", Integer, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
)

subcloud_status = Table(
    "subcloud_status",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subcloud_id", Integer, ForeignKey("subclouds.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("endpoint_type", String(64), nullable=False),
    Column("sync_status", String(32), nullable=False),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    UniqueConstraint("subcloud_id", "endpoint_type", name="uq_subcloud_status_endpoint"),
)

subcloud_alarms = Table(
    "subcloud_alarms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("subcloud_id", Integer, ForeignKey("subclouds.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("critical_alarms", Integer, nullable=False, default=-1),
    Column("major_alarms", Integer, nullable=False, default=-1),
    Column("minor_alarms", Integer, nullable=False, default=-1),
    Column("warnings", Integer, nullable=False, default=-1),
    Column("cloud_status", String(32), nullable=False),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    # SQLite: the row of GET /alarms as JSON text, kept by triggers (migration 0016).
    Column("summary_json", Text, nullable=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    # sha256 of the token: a leaked database does not leak usable tokens.
    Column("digest", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("issued_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False, index=True),
    # The token this one was made from (Keystone's token method): revoked with it.
    Column("parent_digest", String(64), nullable=True, index=True),
)

fault_alarms = Table(
    "fault_alarms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alarm_id", String(16), nullable=False),
    Column("entity_instance_id", String(512), nullable=False),
    # The subcloud the alarm is about, so that delete and rename can find its alarms.
    Column("subcloud_id", Integer, ForeignKey("subclouds.id", ondelete="CASCADE"), index=True),
    Column("severity", String(16), nullable=False),
    Column("reason_text", String(1024), nullable=False),
    Column("timestamp", DateTime, nullable=False),
    UniqueConstraint("alarm_id", "entity_instance_id", name="uq_fault_alarm"),
)

system_peers = Table(
    "system_peers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("peer_uuid", String(36), nullable=False, unique=True),
    Column("peer_name", String(255), nullable=False, unique=True),
    Column("manager_endpoint", String(255), nullable=False),
    Column("manager_username", String(255), nullable=False),
    Column("manager_password", Text, nullable=False),  # Fernet token
    Column("peer_controller_gateway_address", String(64), nullable=False),
    Column("administrative_state", String(16), nullable=False),
    Column("heartbeat_interval", Integer, nullable=False),
    Column("heartbeat_failure_threshold", Integer, nullable=False),
    Column("heartbeat_failure_policy", String(16), nullable=False),
    Column("heartbeat_maintenance_timeout", Integer, nullable=False),
    Column("availability_state", String(16), nullable=False),
    Column("heartbeat_failures", Integer, nullable=False, default=0),
    Column("last_heartbeat_at", DateTime),  # the last heartbeat sent, answered or not
    Column("last_answered_at", DateTime),   # the last one the peer answered
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
)

subcloud_peer_groups = Table(
    "subcloud_peer_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("peer_group_name", String(255), nullable=False, unique=True),
    Column("group_priority", Integer, nullable=False),
    Column("group_state", String(16), nullable=False),
    Column("max_subcloud_rehoming", Integer, nullable=False),
    Column("system_leader_id", String(36), nullable=False),
    Column("system_leader_name", String(255), nullable=False),
    Column("migration_status", String(32)),
    # Set when the peer sharing this group was lost; the peer-group audit clears it.
    Column("needs_audit", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    # What a running migration waits for (a peer that neither answers nor is declared down).
    Column("migration_message", Text),
    # A standby site's automatic failover: the subclouds' sysadmin password (Fernet token),
    # and the sites protecting the group, [{"peer_uuid", "priority"}] as the primary's sync sent it.
    Column("failover_password", Text),
    Column("protection", Text),
)

peer_group_associations = Table(
    "peer_group_associations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("peer_group_id", Integer, ForeignKey("subcloud_peer_groups.id"), nullable=False, index=True),
    Column("system_peer_id", Integer, ForeignKey("system_peers.id"), nullable=False, index=True),
    Column("peer_group_priority", Integer, nullable=False),
    Column("association_type", String(16), nullable=False),
    Column("sync_status", String(16), nullable=False),
    Column("sync_message", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    UniqueConstraint("peer_group_id", "system_peer_id", name="uq_association_group_peer"),
    sqlite_autoincrement=True,  # (migration 0012)
)

# --- scale-out (several `dcman serve` processes on one database) ---------------------------

processes = Table(
    "processes",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("bind", String(255), nullable=False),
    Column("roles", String(64), nullable=False),  # comma-separated dcman.domain.cluster.Role values
    Column("leads", String(255), nullable=False, default=""),  # the singletons it leads, comma-separated
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False, index=True),
)

# One row per (shard, kind), created by the migration; holder is the process uuid. A row
# whose holder is set and whose lease expired was held by a process that died: its taker
# first moves the shard's interrupted steps to their failure state.
shard_leases = Table(
    "shard_leases",
    metadata,
    Column("shard", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("holder", String(36)),
    Column("expires_at", DateTime, nullable=False),
)
