"""Subcloud backup use cases (`/v1.0/subcloud-backup`): create and restore check who may take
part, store the request on each subcloud and set its first state, for the backup loop to
carry out; delete is done at once, as the reference's answer (204, or 207 with a notice)
says what happened. The rules and messages are the reference's (subcloud_backup.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import cluster as cluster_db
from dcman.db import groups as groups_db
from dcman.db import subclouds as subclouds_db
from dcman.db import tables as t
from dcman.domain.backup import (
    BACKUP_RECOVERY,
    DELETE_PARALLELISM,
    check_create,
    check_delete,
    check_release,
    check_restore,
    interrupted_backup,
)
from dcman.domain.commands import BackupCreate, BackupDelete, BackupRestore, BackupTarget
from dcman.domain.errors import DomainError, InvalidInput, NotFound, StateRefused
from dcman.domain.states import BackupStatus, DeployStatus
from dcman.domain.subcloud import Subcloud
from dcman.domain.transitions import transition
from dcman.drivers.agent_client import AgentClient, AgentError, basic_auth
from dcman.services.context import SiteContext
from dcman.services.subcloud_files import remove_backup
from dcman.services.subclouds import SubcloudView, _view

log = logging.getLogger("dcman.backup")

# The states an admission's compare-and-set checks have not changed since they were read.
_ADMITTED_ON = ("management_state", "availability_status", "deploy_status", "backup_status", "prestage_status")


@dataclass(frozen=True)
class Entity:
    """What a request names: one subcloud, or a group and its members."""

    kind: str  # "subcloud" or "group"
    ref: str
    subclouds: list[Subcloud]


async def _entity(conn: AsyncConnection, target: BackupTarget) -> Entity:
    subcloud_ref, group_ref = target.subcloud, target.group
    if subcloud_ref:
        subcloud = await subclouds_db.get_subcloud(conn, subcloud_ref)
        if subcloud is None:
            raise InvalidInput(f"Subcloud {subcloud_ref} not found.")
        return Entity("subcloud", subcloud_ref, [subcloud])
    if group_ref:
        group = await groups_db.get_group(conn, group_ref)
        if group is None:
            raise NotFound(f"Group {group_ref} not found.")
        members = await subclouds_db.list_subclouds(conn, group.id)
        if not members:
            raise InvalidInput(f"No subclouds present in group {group_ref}.")
        return Entity("group", group_ref, members)
    raise InvalidInput("'subcloud' or 'group' parameter is required.")  # a BackupTarget names one


def _valid(entity: Entity, operation: str, check: Any) -> list[Subcloud]:
    """The subclouds that pass `check`; none passing refuses the request with the reference's
    message (the subcloud's own reason for one subcloud)."""
    valid: list[Subcloud] = []
    reason = f"Subcloud(s) must be in a valid state for backup {operation}."
    for subcloud in entity.subclouds:
        try:
            check(subcloud)
        except DomainError as exc:
            reason = exc.message
            continue
        valid.append(subcloud)
    if not valid:
        if entity.kind == "group":
            raise InvalidInput(f"None of the subclouds in group {entity.ref} are in a valid state for "
                               f"subcloud-backup {operation}.")
        raise InvalidInput(reason)
    return valid


async def _admit(ctx: SiteContext, subclouds: list[Subcloud], values: dict[str, Any]) -> list[SubcloudView]:
    """Set `values` on each subcloud whose state did not change since it was checked; the
    answer shows each admitted one as this transaction left it, since the backup loop (of this
    process or another) may move it on the moment it commits."""
    views: list[SubcloudView] = []
    async with ctx.engine.begin() as conn:
        for subcloud in subclouds:
            if await subclouds_db.apply_transition(conn, subcloud.id, transition(subcloud, **values),
                                                   only_if={column: getattr(subcloud, column) for column in _ADMITTED_ON}):
                current = await subclouds_db.get_subcloud(conn, subcloud.id)
                if current is not None:
                    views.append(await _view(conn, current))
    return views


async def create(ctx: SiteContext, command: BackupCreate) -> list[SubcloudView]:
    """POST /subcloud-backup: each valid subcloud goes to `initial`, the backup loop takes it on."""
    async with ctx.engine.connect() as conn:
        entity = await _entity(conn, command.target)
    valid = _valid(entity, "create", check_create)
    request = {"operation": "create", "local_only": command.local_only, "registry_images": command.registry_images,
               "backup_values": command.backup_values, "password": ctx.secrets.encrypt(command.sysadmin_password)}
    admitted = await _admit(ctx, valid, {"backup_status": BackupStatus.INITIAL.value,
                                         "backup_request": json.dumps(request)})
    if not admitted:
        raise InvalidInput(f"The subclouds of {entity.kind} {entity.ref} changed state meanwhile; try again.")
    log.info("backup create of %s %s: %d subcloud(s)", entity.kind, entity.ref, len(admitted))
    ctx.backup_wakeup.set()
    return admitted


async def restore(ctx: SiteContext, command: BackupRestore) -> list[SubcloudView]:
    """PATCH /subcloud-backup/restore: each valid subcloud goes to `pre-restore`."""
    addresses = command.restore_values.get("bootstrap_address", {})
    async with ctx.engine.connect() as conn:
        entity = await _entity(conn, command.target)

    def restorable(subcloud: Subcloud) -> None:
        check_restore(subcloud)
        if subcloud.name not in addresses and subcloud.install_values is None and not subcloud.bootstrap_address:
            raise InvalidInput(f"Unable to obtain the subcloud {subcloud.name} bootstrap_address from either "
                               "restore or install values. Please ensure bootstrap_address is provided in "
                               "the restore_values.")

    valid = _valid(entity, "restore", restorable)
    if command.with_install:
        missing = [s.name for s in entity.subclouds if s.install_values is None]
        if missing:
            raise InvalidInput("The restore operation was requested with with_install, auto or factory, but the "
                               f"following subcloud(s) does not contain install values: {', '.join(missing)}.")
    request = {"operation": "restore", "local_only": command.local_only, "with_install": command.with_install,
               "registry_images": command.registry_images, "release": command.release,
               "restore_values": command.restore_values, "password": ctx.secrets.encrypt(command.sysadmin_password)}
    admitted = await _admit(ctx, valid, {"deploy_status": DeployStatus.PRE_RESTORE.value,
                                         "backup_request": json.dumps(request), "deploy_progress": 0})
    if not admitted:
        raise InvalidInput(f"The subclouds of {entity.kind} {entity.ref} changed state meanwhile; try again.")
    log.info("backup restore of %s %s: %d subcloud(s)", entity.kind, entity.ref, len(admitted))
    ctx.backup_wakeup.set()
    return admitted


async def delete(ctx: SiteContext, release: str, command: BackupDelete, client: AgentClient) -> str | None:
    """PATCH /subcloud-backup/delete/{release}: drop the central backups of `release` (or, with
    local_only, ask each subcloud to drop its own), at most DELETE_PARALLELISM at once.
    Returns None when every one went, else the reference's notice; StateRefused when none did."""
    release = check_release(release)
    local_only, password = command.local_only, command.sysadmin_password
    async with ctx.engine.connect() as conn:
        entity = await _entity(conn, command.target)
    valid = _valid(entity, "delete", lambda subcloud: check_delete(subcloud, local_only))
    invalid = [s for s in entity.subclouds if s not in valid]
    room = asyncio.Semaphore(DELETE_PARALLELISM)

    async def one(subcloud: Subcloud) -> bool:
        async with room:
            if local_only:
                assert password is not None
                try:
                    answer = await client.delete_backup(subcloud.management_start_ip, basic_auth(password), release,
                                                       epoch=subcloud.fencing_epoch)
                    gone, reason = answer.status == 200, str((answer.body or {}).get("error", ""))
                except AgentError as exc:
                    gone, reason = False, f"cannot reach the subcloud: {exc}"
            else:
                gone = await asyncio.to_thread(remove_backup, ctx.settings.data_dir, subcloud.id, release)
                reason = "The specified subcloud backup does not exist."
        async with ctx.engine.begin() as conn:
            values: dict[str, Any] = {"backup_status": BackupStatus.UNKNOWN.value}
            if gone:
                values["backup_datetime"] = None
            else:
                values["error_description"] = f"Deleting the backup of release {release} failed: {reason}"[:2048]
            await subclouds_db.apply_transition(conn, subcloud.id, transition(subcloud, **values))
        log.info("subcloud %s: backup of %s %s", subcloud.name, release, "deleted" if gone else f"kept: {reason}")
        return gone

    results = await asyncio.gather(*(one(subcloud) for subcloud in valid))
    failed = [s for s, gone in zip(valid, results) if not gone]
    if len(failed) == len(valid) and not invalid:
        raise StateRefused("Failed to run subcloud-backup delete. Please run 'dcmanager subcloud error' command "
                           "for details")
    if not failed and not invalid:
        return None
    notice = "Subcloud backup delete operation completed with warnings:\n"
    if invalid:
        notice += ("The following subclouds were skipped for local backup delete operation: "
                   f"{' ,'.join(s.name for s in invalid)}.")
    if failed:
        notice += f"The following subclouds failed during backup delete operation: {' ,'.join(s.name for s in failed)}."
    return notice


async def recover_interrupted_backups(conn: AsyncConnection, shards: frozenset[int]) -> int:
    """Backups cut short by the death of the process that drove them go to their failure
    state (§2.3.4): validating, pre-backup and backing-up. Returns how many moved."""
    if not shards:
        return 0
    c = t.subclouds.c
    rows = await conn.execute(select(c.id, c.backup_status).where(and_(
        c.backup_status.in_([s.value for s in BACKUP_RECOVERY]), cluster_db.shard_filter(c.id, shards))))
    moved = 0
    for subcloud_id, running in list(rows):
        failed = BACKUP_RECOVERY[BackupStatus(running)]
        change = interrupted_backup(BackupStatus(running))
        if await subclouds_db.apply_transition(conn, subcloud_id, change, only_if={"backup_status": running}):
            moved += 1
            log.warning("subcloud %s: backup %s interrupted by a restart -> %s", subcloud_id, running, failed)
    return moved
