"""The backup loop: carries out the backups and restores the API admitted (dcman.services.backup).

A backup goes `initial → validating → pre-backup → backing-up → complete-local|complete-central`
(or `validate-failed`, `backup-prep-failed`, `failed`) on the backup status, through the agent's
`backup` phase; a central one is then streamed from the agent into the subcloud's data folder,
never held whole, with its SHA-256 beside it. A restore goes `pre-restore → restoring →
complete` (or `restore-prep-failed`, `restore-failed`) on the deploy status, through the
agent's `restore` phase; a central one first uploads the central backup to the subcloud,
during pre-restore, unless the subcloud holds it already (same size and SHA-256). Like the deploy loop it is level-triggered: every transition is a
compare-and-set on the stored state, so a restart or a second process never takes a step twice,
and it drives only the subclouds of the deploy shards this process holds. At most
CREATE_PARALLELISM backups and RESTORE_PARALLELISM restores run at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import cluster as cluster_db
from dcman.db import tables as t
from dcman.db.clock import utcnow
from dcman.domain.backup import CREATE_PARALLELISM, RESTORE_PARALLELISM
from dcman.domain.cluster import LeaseKind
from dcman.domain.deploy import error_text
from dcman.domain.states import AvailabilityStatus, BackupStatus as B, DeployStatus as D, ManagementState
from dcman.domain.subcloud import NO_ERRORS, Subcloud
from dcman.domain.transitions import transition
from dcman.drivers.agent_client import AgentError, basic_auth
from dcman.loops import runner
from dcman.loops.runner import Pending, SubcloudTasks, Timing, Work
from dcman.loops.subcloud_driver import SubcloudDriver
from dcman.services import transitions
from dcman.services.context import SiteContext
from dcman.services.subcloud_files import (
    BACKUP_FILE,
    PARTIAL_SUFFIX,
    backup_path,
    checksum_path,
    operation_log_path,
    read_checksum,
)

log = logging.getLogger("dcman.backup")
IDLE_TICK_S = 1.0
POLL_S = 0.5
# Polls in a row without an answer before a running backup or restore is given up as failed.
MAX_LOST_POLLS = 20
BACKUP_WORK = (B.INITIAL, B.VALIDATING, B.PRE_BACKUP, B.BACKING_UP)
RESTORE_WORK = (D.PRE_RESTORE, D.RESTORING)
# Free space a central backup must leave on the data directory's disk.
DISK_RESERVE_BYTES = 256 * 1024 * 1024


def request_of(subcloud: Subcloud) -> dict[str, Any]:
    try:
        request = json.loads(subcloud.backup_request or "{}")
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class CentralCopy:
    """A central backup being written: a `.part` file and its running SHA-256, renamed into
    place with its checksum once the last byte is in (every file call runs in a thread)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(target.name + PARTIAL_SUFFIX)
        self.digest = hashlib.sha256()
        self.handle: Any = None

    def _open(self) -> None:
        self.target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.handle = self.partial.open("wb")

    def _write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digest.update(chunk)

    def _commit(self) -> str:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        checksum = self.digest.hexdigest()
        os.replace(self.partial, self.target)
        checksum_path(self.target).write_text(f"{checksum}  {BACKUP_FILE}\n", encoding="ascii")
        return checksum

    def _discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.partial.unlink(missing_ok=True)

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    async def write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._write, chunk)

    async def commit(self) -> str:
        return await asyncio.to_thread(self._commit)

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard)


class Driver(SubcloudDriver):
    """Takes one subcloud's backup or restore as far as it can go now."""

    async def move(self, subcloud: Subcloud, column: str, to: str, **columns: Any) -> bool:
        """Compare-and-set `column` (backup_status or deploy_status) from its loaded value to `to`."""
        moved = await transitions.move(self.ctx, self.id, transition(subcloud, **{column: to, **columns}),
                                       only_if={column: getattr(subcloud, column)})
        if moved:
            log.info("subcloud %s: %s %s -> %s", subcloud.name, column, getattr(subcloud, column), to)
        return moved

    async def write_log(self, subcloud: Subcloud, operation: str, line: str) -> None:
        await self.append_log(operation_log_path(self.ctx.settings.data_dir, subcloud.id, operation), line)

    def auth(self, subcloud: Subcloud) -> str:
        token = request_of(subcloud).get("password") or subcloud.sysadmin_password or ""
        return basic_auth(self.ctx.secrets.decrypt(token))

    async def step(self, subcloud: Subcloud) -> bool:
        """One step; False when there is nothing to do now."""
        operation = request_of(subcloud).get("operation")
        if operation == "create" and subcloud.backup_status in BACKUP_WORK:
            return await self.backup_step(subcloud)
        if operation == "restore" and subcloud.deploy_status in RESTORE_WORK:
            return await self.restore_step(subcloud)
        return False

    # --- backup -------------------------------------------------------------------------

    async def fail_backup(self, subcloud: Subcloud, to: B, message: str) -> bool:
        await self.write_log(subcloud, "backup", message)
        return await self.move(subcloud, "backup_status", to.value, backup_request=None,
                               error_description=error_text(message))

    async def backup_step(self, subcloud: Subcloud) -> bool:
        status = subcloud.backup_status
        if status == B.INITIAL:
            return await self.move(subcloud, "backup_status", B.VALIDATING.value)
        if status == B.VALIDATING:
            return await self.validate(subcloud)
        if status == B.PRE_BACKUP:
            return await self.start(subcloud, "backup", self.backup_payload(subcloud))
        return await self.poll_backup(subcloud)

    def backup_payload(self, subcloud: Subcloud) -> dict[str, Any]:
        request = request_of(subcloud)
        return {"system_controller": self.ctx.site_uuid, "name": subcloud.name, "release": subcloud.software_version,
                "local_only": bool(request.get("local_only")), "registry_images": bool(request.get("registry_images")),
                "backup_values": request.get("backup_values") or {}}

    async def validate(self, subcloud: Subcloud) -> bool:
        """Still deployed, online and managed, and its agent answers with this password."""
        if subcloud.availability_status != AvailabilityStatus.ONLINE \
                or subcloud.management_state != ManagementState.MANAGED or subcloud.deploy_status != D.COMPLETE:
            return await self.fail_backup(subcloud, B.VALIDATE_FAILED,
                                          f"Subcloud {subcloud.name} is no longer deployed, online and managed "
                                          f"({subcloud.deploy_status}, {subcloud.availability_status}, "
                                          f"{subcloud.management_state}).")
        try:
            answer = await self.client.status(subcloud.management_start_ip, self.auth(subcloud))
        except AgentError as exc:
            return await self.fail_backup(subcloud, B.VALIDATE_FAILED, f"Cannot validate the subcloud: {exc}")
        if answer.status == 401:
            return await self.fail_backup(subcloud, B.VALIDATE_FAILED,
                                          "The subcloud refused the sysadmin password given for the backup.")
        if answer.status != 200:
            return await self.fail_backup(subcloud, B.VALIDATE_FAILED,
                                          f"The subcloud's status answer was {answer.status}: {answer.body}")
        return await self.move(subcloud, "backup_status", B.PRE_BACKUP.value)

    async def start(self, subcloud: Subcloud, phase: str, payload: dict[str, Any]) -> bool:
        """Start the agent's `backup` or `restore` phase (adopting one a restart left running)."""
        address, auth = subcloud.management_start_ip, self.auth(subcloud)
        prep_failed = (("backup_status", B.BACKUP_PREP_FAILED.value) if phase == "backup"
                       else ("deploy_status", D.RESTORE_PREP_FAILED.value))
        try:
            await self.as_controller(subcloud, lambda epoch: self.client.start_phase(address, auth, phase, payload, epoch))
        except AgentError as exc:
            message = f"Cannot start the {phase}: {exc}"
            await self.write_log(subcloud, phase, message)
            return await self.move(subcloud, prep_failed[0], prep_failed[1], backup_request=None,
                                   error_description=error_text(message))
        await self.write_log(subcloud, phase, f"{phase} started on {address}")
        running = ("backup_status", B.BACKING_UP.value) if phase == "backup" else ("deploy_status", D.RESTORING.value)
        return await self.move(subcloud, running[0], running[1], error_description=NO_ERRORS)

    async def current(self, subcloud: Subcloud, phase: str) -> dict[str, Any] | None:
        """The agent's phase, or None when it did not answer (counted)."""
        await asyncio.sleep(POLL_S)
        try:
            answer = await self.client.current_phase(subcloud.management_start_ip, self.auth(subcloud))
        except AgentError:
            self.lost_polls += 1
            return None
        if answer.status != 200 or not isinstance(answer.body, dict):
            self.lost_polls += 1
            return None
        self.lost_polls = 0
        return answer.body

    async def poll_backup(self, subcloud: Subcloud) -> bool:
        body = await self.current(subcloud, "backup")
        if body is None:
            if self.lost_polls >= MAX_LOST_POLLS:
                return await self.fail_backup(subcloud, B.FAILED, "The subcloud stopped answering during the backup.")
            return True
        if body.get("phase") != "backup":
            return await self.fail_backup(subcloud, B.FAILED, f"The subcloud runs {body.get('phase')}, not the backup.")
        state = body.get("state")
        if state == "running":
            return True
        if state != "succeeded":
            message = str(body.get("message") or f"The backup ended {state}.")
            return await self.fail_backup(subcloud, B.FAILED, message)
        if request_of(subcloud).get("local_only"):
            await self.write_log(subcloud, "backup", "backup complete, kept on the subcloud")
            return await self.move(subcloud, "backup_status", B.COMPLETE_LOCAL.value, backup_request=None,
                                   backup_datetime=utcnow(), error_description=NO_ERRORS)
        return await self.fetch(subcloud)

    async def fetch(self, subcloud: Subcloud) -> bool:
        """Stream the subcloud's backup into its central folder, checksummed as it comes."""
        release = subcloud.software_version
        copy = CentralCopy(backup_path(self.ctx.settings.data_dir, subcloud.id, release))
        try:
            await copy.open()
            # Never fill the data directory's disk: the database and the logs live there too.
            room = (await asyncio.to_thread(shutil.disk_usage, copy.target.parent)).free - DISK_RESERVE_BYTES
            size = await self.client.download_backup(subcloud.management_start_ip, self.auth(subcloud), release,
                                                     copy.write, max_length=room)
            checksum = await copy.commit()
        except (AgentError, OSError) as exc:
            await copy.discard()
            return await self.fail_backup(subcloud, B.FAILED, f"Copying the backup to the site failed: {exc}")
        except BaseException:
            await asyncio.shield(copy.discard())
            raise
        await self.write_log(subcloud, "backup", f"backup of {release} stored centrally: {size} bytes, sha256 {checksum}")
        return await self.move(subcloud, "backup_status", B.COMPLETE_CENTRAL.value, backup_request=None,
                               backup_datetime=utcnow(), error_description=NO_ERRORS)

    # --- restore ------------------------------------------------------------------------

    async def restore_step(self, subcloud: Subcloud) -> bool:
        if subcloud.deploy_status == D.PRE_RESTORE:
            return await self.start_restore(subcloud)
        return await self.poll_restore(subcloud)

    async def fail_restore(self, subcloud: Subcloud, to: D, message: str) -> bool:
        await self.write_log(subcloud, "restore", message)
        return await self.move(subcloud, "deploy_status", to.value, backup_request=None,
                               error_description=error_text(message))

    async def start_restore(self, subcloud: Subcloud) -> bool:
        request = request_of(subcloud)
        release = request.get("release") or subcloud.software_version
        addresses = (request.get("restore_values") or {}).get("bootstrap_address") or {}
        payload: dict[str, Any] = {
            "system_controller": self.ctx.site_uuid, "name": subcloud.name, "release": release,
            "local_only": bool(request.get("local_only")), "with_install": bool(request.get("with_install")),
            "registry_images": bool(request.get("registry_images")),
            "restore_values": request.get("restore_values") or {},
            "bootstrap_address": addresses.get(subcloud.name) or subcloud.bootstrap_address}
        if not request.get("local_only"):
            # A central restore needs the central backup of that release, as it was stored.
            backup = backup_path(self.ctx.settings.data_dir, subcloud.id, release)
            recorded = await asyncio.to_thread(read_checksum, backup)
            if recorded is None or not await asyncio.to_thread(backup.is_file):
                return await self.fail_restore(subcloud, D.RESTORE_PREP_FAILED,
                                               f"No central backup of release {release} exists for subcloud "
                                               f"{subcloud.name}.")
            actual = await asyncio.to_thread(_sha256_of, backup)
            if actual != recorded:
                return await self.fail_restore(subcloud, D.RESTORE_PREP_FAILED,
                                               f"The central backup of release {release} of subcloud {subcloud.name} "
                                               "does not match its recorded checksum.")
            size = (await asyncio.to_thread(backup.stat)).st_size
            payload["backup_sha256"], payload["backup_size"] = actual, size
            if not await self.subcloud_holds(subcloud, release, backup, size, actual):
                return True  # it failed (restore-prep-failed), and said why
        return await self.start(subcloud, "restore", payload)

    async def subcloud_holds(self, subcloud: Subcloud, release: str, backup: Path, size: int, sha256: str) -> bool:
        """The subcloud holds this central backup, or it is uploaded now (the subcloud lost its
        copy, or holds another); False once the restore has failed for want of it."""
        address, auth = subcloud.management_start_ip, self.auth(subcloud)
        try:
            if await self.client.backup_checksum(address, auth, release) == (size, sha256):
                return True
            await self.write_log(subcloud, "restore", f"the subcloud holds no copy of the central backup of {release}: "
                                                      f"uploading {size} bytes")
            await self.as_controller(subcloud, lambda epoch: self.client.upload_backup(address, auth, release, backup,
                                                                                       size, sha256, epoch))
        except (AgentError, OSError) as exc:
            await self.fail_restore(subcloud, D.RESTORE_PREP_FAILED,
                                    f"Copying the central backup of release {release} to the subcloud failed: {exc}")
            return False
        await self.write_log(subcloud, "restore", f"central backup of {release} uploaded, sha256 {sha256}")
        return True

    async def poll_restore(self, subcloud: Subcloud) -> bool:
        body = await self.current(subcloud, "restore")
        if body is None:
            if self.lost_polls >= MAX_LOST_POLLS:
                return await self.fail_restore(subcloud, D.RESTORE_FAILED,
                                               "The subcloud stopped answering during the restore.")
            return True
        if body.get("phase") != "restore":
            return await self.fail_restore(subcloud, D.RESTORE_FAILED,
                                           f"The subcloud runs {body.get('phase')}, not the restore.")
        state = body.get("state")
        if state == "running":
            progress = body.get("progress")
            if isinstance(progress, int) and progress != subcloud.deploy_progress:
                await transitions.move(self.ctx, self.id, transition(subcloud, deploy_progress=progress),
                                       only_if={"deploy_status": D.RESTORING})
            return True
        if state != "succeeded":
            return await self.fail_restore(subcloud, D.RESTORE_FAILED,
                                           str(body.get("message") or f"The restore ended {state}."))
        await self.write_log(subcloud, "restore", "restore complete")
        return await self.move(subcloud, "deploy_status", D.COMPLETE.value, backup_request=None, deploy_progress=100,
                               error_description=NO_ERRORS)


async def subclouds_with_backup_work(conn: AsyncConnection, exclude: list[int], limit: int, shards: frozenset[int],
                                     restores: bool) -> list[int]:
    """Subclouds of these shards with a backup (or, with `restores`, a restore) to carry on."""
    c = t.subclouds.c
    if restores:
        wanted = c.deploy_status.in_([s.value for s in RESTORE_WORK])
    else:
        wanted = c.backup_status.in_([s.value for s in BACKUP_WORK])
    query = select(c.id).where(and_(wanted, c.backup_request.is_not(None), cluster_db.shard_filter(c.id, shards))
                               ).order_by(c.id).limit(limit)
    if exclude:
        query = query.where(c.id.not_in(exclude))
    return list((await conn.execute(query)).scalars())


class BackupLoop:
    """Drives the backups and the restores of the held deploy shards, each up to its parallelism."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.client = ctx.agents
        shards = ctx.shards[LeaseKind.DEPLOY]
        self.backups = SubcloudTasks("backup", shards, CREATE_PARALLELISM, ctx.backup_wakeup.set_local)
        self.restores = SubcloudTasks("restore", shards, RESTORE_PARALLELISM, ctx.backup_wakeup.set_local)

    def pending(self, restores: bool) -> Pending:
        async def find(conn: AsyncConnection, exclude: list[int], limit: int,
                       shards: frozenset[int]) -> list[tuple[int, Work]]:
            found = await subclouds_with_backup_work(conn, exclude, limit, shards, restores)
            return [(subcloud_id, Driver(self.ctx, self.client, subcloud_id).run) for subcloud_id in found]

        return find

    async def reconcile(self) -> None:
        # A subcloud is never both backed up and restored: each query leaves out the other's.
        await self.backups.fill(self.ctx.engine, self.pending(restores=False), busy=self.restores.running)
        await self.restores.fill(self.ctx.engine, self.pending(restores=True), busy=self.backups.running)


async def run(ctx: SiteContext) -> None:
    await runner.run("backup", BackupLoop(ctx).reconcile, Timing(IDLE_TICK_S), ctx.backup_wakeup)
