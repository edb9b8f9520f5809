"""The state vocabularies of the reference system, as enums whose values are the API strings."""

from __future__ import annotations

from enum import StrEnum


class ManagementState(StrEnum):
    MANAGED = "managed"
    UNMANAGED = "unmanaged"


class AvailabilityStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeployStatus(StrEnum):
    NOT_DEPLOYED = "not-deployed"
    CREATING = "creating"
    CREATE_COMPLETE = "create-complete"
    CREATE_FAILED = "create-failed"
    PRE_INSTALL = "pre-install"
    PRE_INSTALL_FAILED = "pre-install-failed"
    INSTALLING = "installing"
    INSTALL_COMPLETE = "install-complete"
    INSTALL_FAILED = "install-failed"
    ABORTING_INSTALL = "aborting-install"
    INSTALL_ABORTED = "install-aborted"
    PRE_BOOTSTRAP = "pre-bootstrap"
    PRE_BOOTSTRAP_FAILED = "pre-bootstrap-failed"
    BOOTSTRAPPING = "bootstrapping"
    BOOTSTRAP_COMPLETE = "bootstrap-complete"
    BOOTSTRAP_FAILED = "bootstrap-failed"
    ABORTING_BOOTSTRAP = "aborting-bootstrap"
    BOOTSTRAP_ABORTED = "bootstrap-aborted"
    PRE_CONFIG = "pre-config"
    PRE_CONFIG_FAILED = "pre-config-failed"
    CONFIGURING = "configuring"
    CONFIG_FAILED = "config-failed"
    ABORTING_CONFIG = "aborting-config"
    CONFIG_ABORTED = "config-aborted"
    COMPLETE = "complete"
    PRE_RESTORE = "pre-restore"
    RESTORING = "restoring"
    RESTORE_PREP_FAILED = "restore-prep-failed"
    RESTORE_FAILED = "restore-failed"
    RECONFIGURING_NETWORK = "reconfiguring-network"
    NETWORK_RECONFIGURATION_FAILED = "network-reconfiguration-failed"
    SECONDARY = "secondary"
    SECONDARY_FAILED = "secondary-failed"
    REHOME_PENDING = "rehome-pending"
    PRE_REHOME = "pre-rehome"
    REHOMING = "rehoming"
    REHOME_FAILED = "rehome-failed"
    REHOME_PREP_FAILED = "rehome-prep-failed"


# States in which an operation is running on the subcloud: delete is refused in them
# (the reference's later, safer rule, lifecycle §2.9).
ACTIVE_DEPLOY_STATES: frozenset[DeployStatus] = frozenset(
    {
        DeployStatus.CREATING,
        DeployStatus.PRE_INSTALL,
        DeployStatus.INSTALLING,
        DeployStatus.PRE_BOOTSTRAP,
        DeployStatus.BOOTSTRAPPING,
        DeployStatus.PRE_CONFIG,
        DeployStatus.CONFIGURING,
        DeployStatus.ABORTING_INSTALL,
        DeployStatus.ABORTING_BOOTSTRAP,
        DeployStatus.ABORTING_CONFIG,
        DeployStatus.PRE_RESTORE,
        DeployStatus.RESTORING,
        DeployStatus.PRE_REHOME,
        DeployStatus.REHOMING,
        DeployStatus.REHOME_PENDING,
        DeployStatus.RECONFIGURING_NETWORK,
    }
)


class BackupStatus(StrEnum):
    """A subcloud's backup (lifecycle reference §1.1); the machine is in dcman.domain.backup."""

    INITIAL = "initial"
    VALIDATING = "validating"
    VALIDATE_FAILED = "validate-failed"
    PRE_BACKUP = "pre-backup"
    BACKUP_PREP_FAILED = "backup-prep-failed"
    BACKING_UP = "backing-up"
    FAILED = "failed"
    UNKNOWN = "unknown"
    COMPLETE_LOCAL = "complete-local"
    COMPLETE_CENTRAL = "complete-central"


class SyncStatus(StrEnum):
    UNKNOWN = "unknown"
    IN_SYNC = "in-sync"
    OUT_OF_SYNC = "out-of-sync"


class EndpointType(StrEnum):
    """The endpoint types tracked per subcloud (the reference's later list)."""

    PLATFORM = "platform"
    IDENTITY = "identity"
    DC_CERT = "dc-cert"
    FIRMWARE = "firmware"
    KUBERNETES = "kubernetes"
    KUBE_ROOTCA = "kube-rootca"
    SOFTWARE = "software"


class UpdateApplyType(StrEnum):
    PARALLEL = "parallel"
    SERIAL = "serial"


class CloudStatus(StrEnum):
    """Roll-up of a subcloud's alarm summary."""

    DISABLED = "disabled"
    OK = "OK"
    DEGRADED = "degraded"
    CRITICAL = "critical"


class Role(StrEnum):
    ADMIN = "admin"
    READER = "reader"


class AdministrativeState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class PeerAvailability(StrEnum):
    CREATED = "created"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


class HeartbeatFailurePolicy(StrEnum):
    ALARM = "alarm"  # the only one acted on, as in the reference
    REHOME = "rehome"
    DELEGATE = "delegate"


class GroupState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class MigrationStatus(StrEnum):
    NONE = "none"
    MIGRATING = "migrating"
    COMPLETE = "complete"


class AssociationType(StrEnum):
    PRIMARY = "primary"
    NON_PRIMARY = "non-primary"


class AssociationSyncStatus(StrEnum):
    SYNCING = "syncing"
    IN_SYNC = "in-sync"
    OUT_OF_SYNC = "out-of-sync"
    FAILED = "failed"
    UNKNOWN = "unknown"

# A rehome is under way: the subcloud holds one of a migration's `max_subcloud_rehoming`
# slots, and a peer may not take it back.
REHOMING_STATES: frozenset[DeployStatus] = frozenset({DeployStatus.PRE_REHOME, DeployStatus.REHOMING})
# A copy of a subcloud another site manages (geo-redundancy §3): not audited, not deployed here.
SECONDARY_STATES: frozenset[DeployStatus] = frozenset({DeployStatus.SECONDARY, DeployStatus.SECONDARY_FAILED})
