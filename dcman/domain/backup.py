"""Subcloud backup and restore (lifecycle reference §1.1, §2.3.2, §2.3.4): the backup status
machine, what a restart leaves behind, and who may be backed up, deleted or restored.

    initial → validating → pre-backup → backing-up → complete-local | complete-central
              ↘ validate-failed  ↘ backup-prep-failed  ↘ failed

A restore runs on the deploy status: `pre-restore → restoring → complete`, or
`restore-prep-failed` / `restore-failed` (their recovery is in dcman.domain.deploy)."""

from __future__ import annotations

import re

from dcman.domain.errors import InvalidInput
from dcman.domain.states import AvailabilityStatus, BackupStatus, DeployStatus, ManagementState
from dcman.domain.subcloud import Subcloud
from dcman.domain.transitions import Transition


# A backup in one of these is under way: no second operation may start on the subcloud.
BACKUP_IN_PROGRESS = frozenset({BackupStatus.INITIAL, BackupStatus.VALIDATING, BackupStatus.PRE_BACKUP,
                                BackupStatus.BACKING_UP})
# What a restart leaves a backup cut short in (§2.3.4). `initial` is not here: nothing ran
# yet, so the backup loop simply starts it again.
BACKUP_RECOVERY: dict[BackupStatus, BackupStatus] = {
    BackupStatus.VALIDATING: BackupStatus.VALIDATE_FAILED,
    BackupStatus.PRE_BACKUP: BackupStatus.BACKUP_PREP_FAILED,
    BackupStatus.BACKING_UP: BackupStatus.FAILED,
}
RESTORE_STATES = frozenset({DeployStatus.PRE_RESTORE, DeployStatus.RESTORING})
# The deploy states a restore may not start from (§2.3.2): a deploy, rehome or restore runs.
NO_RESTORE_FROM = frozenset({
    DeployStatus.CREATING, DeployStatus.PRE_INSTALL, DeployStatus.INSTALLING, DeployStatus.PRE_BOOTSTRAP,
    DeployStatus.BOOTSTRAPPING, DeployStatus.PRE_CONFIG, DeployStatus.CONFIGURING, DeployStatus.PRE_REHOME,
    DeployStatus.REHOMING, DeployStatus.PRE_RESTORE, DeployStatus.RESTORING,
})
# Deploy states of an operation under way, beyond those a restore refuses by itself.
_DEPLOY_BUSY = NO_RESTORE_FROM | {DeployStatus.ABORTING_INSTALL, DeployStatus.ABORTING_BOOTSTRAP,
                                  DeployStatus.ABORTING_CONFIG, DeployStatus.RECONFIGURING_NETWORK,
                                  DeployStatus.NOT_DEPLOYED}
_PRESTAGING = frozenset({"prestaging", "prestaging-packages", "prestaging-images"})
# The reference pools this many subclouds per backup create and delete, and per restore.
CREATE_PARALLELISM = 250
DELETE_PARALLELISM = 250
RESTORE_PARALLELISM = 100


def operation_in_progress(subcloud: Subcloud) -> str | None:
    """Why another operation runs on the subcloud now, or None."""
    if subcloud.prestage_status in _PRESTAGING:
        return f"prestage_status is '{subcloud.prestage_status}'"
    if subcloud.backup_status in BACKUP_IN_PROGRESS:
        return f"backup_status is '{subcloud.backup_status}'"
    if subcloud.deploy_status in _DEPLOY_BUSY:
        return f"deploy_status is '{subcloud.deploy_status}'"
    return None


def check_create(subcloud: Subcloud) -> None:
    """A backup is taken only of a deployed, online, managed subcloud with nothing else running."""
    if subcloud.availability_status != AvailabilityStatus.ONLINE \
            or subcloud.management_state != ManagementState.MANAGED \
            or subcloud.deploy_status != DeployStatus.COMPLETE:
        raise InvalidInput(f"Subcloud {subcloud.name} must be deployed, online and managed for the "
                           "subcloud-backup create operation.")
    busy = operation_in_progress(subcloud)
    if busy:
        raise InvalidInput(f"Cannot perform subcloud-backup create operation on subcloud {subcloud.name}: {busy}.")


def check_delete(subcloud: Subcloud, local_only: bool) -> None:
    """A local backup lives on the subcloud, which must then answer; nothing may be running."""
    if local_only and (subcloud.availability_status != AvailabilityStatus.ONLINE
                       or subcloud.management_state != ManagementState.MANAGED):
        raise InvalidInput(f"Subcloud {subcloud.name} must be online and managed for the subcloud-backup "
                           "delete operation with --local-only option.")
    busy = operation_in_progress(subcloud)
    if busy:
        raise InvalidInput(f"Cannot perform subcloud-backup delete operation on subcloud {subcloud.name}: {busy}.")


def check_restore(subcloud: Subcloud) -> None:
    """A restore overwrites the subcloud: it must be unmanaged, with no deploy, rehome or backup running."""
    if subcloud.management_state != ManagementState.UNMANAGED or subcloud.deploy_status in NO_RESTORE_FROM:
        raise InvalidInput(f"Subcloud {subcloud.name} must be unmanaged and in a valid deploy state for the "
                           "subcloud-backup restore operation.")
    busy = operation_in_progress(subcloud)
    if busy:
        raise InvalidInput(f"Cannot perform subcloud-backup restore operation on subcloud {subcloud.name}: {busy}.")


def interrupted_backup(running: BackupStatus) -> Transition:
    """A backup a dead process was driving fails (§2.3.4), its request dropped."""
    return Transition({"backup_status": BACKUP_RECOVERY[running], "backup_request": None,
                       "error_description": f"The site restarted while the subcloud's backup was {running}."})


def recovered_backup_status(status: str | None) -> BackupStatus | None:
    """The backup status a subcloud found in `status` at start-up moves to, or None to leave it."""
    try:
        return BACKUP_RECOVERY.get(BackupStatus(status)) if status else None
    except ValueError:
        return None


_RELEASE = re.compile(r"[0-9]{1,4}(\.[0-9]{1,4}){0,3}")


def check_release(release: str) -> str:
    """A release as a backup delete names it in its path, e.g. 24.09: digits and dots only,
    since it becomes a folder name of the central backups."""
    if not isinstance(release, str) or not _RELEASE.fullmatch(release):
        raise InvalidInput(f"Release version {release!r} is not a release like 24.09.")
    return release
