"""Peer-group migration and the peer-group audit (geo-redundancy reference §4, §5).

`migrate` only writes the desired state: the group becomes `migrating` and its chosen
subclouds get the rehome plan; the migration reconciler (dcman.loops.migration) carries it
out. The audit reconciles a local group with a peer's copy of it, when the peer asks
(`audit_from_peer`) or its heartbeat shows a copy to audit against (dcman.loops.peer_monitor).
"""

from __future__ import annotations

import logging
from typing import Any

from dcman.db import associations as associations_db
from dcman.db import audit as audit_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.db import subclouds as subclouds_db
from dcman.db.clock import utcnow
from dcman.domain.alarms import AlarmId
from dcman.domain.errors import InvalidInput, NotFound
from dcman.domain.migration import (
    audit_peer_group,
    check_migrate,
    check_something_to_migrate,
    choose_for_migration,
    queued_for_rehome,
    rehome_refused,
)
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.peers import SystemPeer
from dcman.domain.states import MigrationStatus
from dcman.domain.transitions import transition
from dcman.services.context import SiteContext
from dcman.services.forms import decode_password
from dcman.services.subclouds import SubcloudView

log = logging.getLogger("dcman.migration")


async def _group(conn: Any, ref: str) -> SubcloudPeerGroup:
    group = await peer_groups_db.get_peer_group(conn, ref)
    if group is None:
        raise NotFound(f"Subcloud peer group {ref} not found.")
    return group


def group_copy(group: SubcloudPeerGroup) -> dict[str, Any]:
    """This site's copy of a group, as the peer's audit reads it."""
    return {"peer_group_name": group.peer_group_name, "group_priority": group.group_priority,
            "group_state": group.group_state, "max_subcloud_rehoming": group.max_subcloud_rehoming,
            "system_leader_id": group.system_leader_id, "system_leader_name": group.system_leader_name,
            "migration_status": group.migration_status}


# --- migrate (§4) ---------------------------------------------------------------------------


async def migrate(ctx: SiteContext, ref: str, password: object) -> tuple[SubcloudPeerGroup, list[SubcloudView]]:
    """Start a migration with the subclouds' sysadmin password (base64, as sent): the group and
    the subclouds it queued for rehoming (the reference answers those; the dcmanager client shows them)."""
    async with ctx.engine.connect() as conn:
        group = await _group(conn, ref)
        check_migrate(group, await peer_groups_db.count_group_subclouds(conn, group.id), password)
    return await start_migration(ctx, ref, decode_password("sysadmin_password", password))


async def start_migration(ctx: SiteContext, ref: str, password: str) -> tuple[SubcloudPeerGroup, list[SubcloudView]]:
    """Queue the group's migratable subclouds for rehoming with `password` (in clear): what an
    operator's migrate does, and what the automatic failover does with the stored password."""
    async with ctx.engine.begin() as conn:
        group = await peer_groups_db.get_peer_group(conn, ref, for_update=True)
        if group is None:
            raise NotFound(f"Subcloud peer group {ref} not found.")
        members = await peer_groups_db.subclouds_of_group(conn, group.id)
        check_migrate(group, len(members), password)
        choice = choose_for_migration(members)
        check_something_to_migrate(group, choice)
        by_id = {s.id: s for s in members}
        for subcloud_id in choice.prep_failed:
            await subclouds_db.apply_transition(conn, subcloud_id, rehome_refused(
                by_id[subcloud_id], "The subcloud has no rehome data; it cannot be migrated."))
        secret = ctx.secrets.encrypt(password)
        for subcloud_id in choice.queued:
            await subclouds_db.apply_transition(conn, subcloud_id, queued_for_rehome(by_id[subcloud_id], secret))
        await peer_groups_db.update_peer_group(conn, group.id, {"migration_status": MigrationStatus.MIGRATING.value,
                                                         "migration_message": None})
        updated = await _group(conn, str(group.id))
        chosen = set(choice.queued)
        queued = [s for s in await peer_groups_db.subclouds_of_group(conn, group.id) if s.id in chosen]
        statuses = await subclouds_db.endpoint_statuses(conn, [s.id for s in queued]) if queued else {}
    log.info("peer group %s: migrating %d subcloud(s), %d without rehome data, %d skipped",
             group.peer_group_name, len(choice.queued), len(choice.prep_failed), len(choice.skipped))
    ctx.migration_wakeup.set()
    return updated, [SubcloudView(s, statuses.get(s.id, [])) for s in queued]


# --- the peer-group audit (§5) --------------------------------------------------------------


async def audit_from_peer(ctx: SiteContext, ref: str, peer_uuid: str, remote: dict[str, object]) -> dict[str, Any]:
    """PATCH …/{group}/audit, which only a peer site calls: it sends its copy of the group
    (`remote`) and its uuid."""
    async with ctx.engine.connect() as conn:
        group = await _group(conn, ref)
        peer = await peers_db.get_peer(conn, peer_uuid)
    if peer is None:
        raise InvalidInput(f"System peer {peer_uuid} does not exist on this site.")
    await audit_group(ctx, group, peer, remote)
    async with ctx.engine.connect() as conn:
        return group_copy(await _group(conn, str(group.id)))


async def audit_group(ctx: SiteContext, group: SubcloudPeerGroup, peer: SystemPeer, remote: dict[str, Any]) -> None:
    """Reconcile the local group with the peer's copy `remote` (the group's fields as the
    API shows them)."""
    site = ctx.peer_site(peer, retries=1)
    try:
        remote_members = None
        if remote.get("migration_status") == MigrationStatus.COMPLETE:
            remote_members = [s.fields for s in await site.peer_group_subclouds(group.peer_group_name)]
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
        outcome = audit_peer_group(group, remote, members, remote_members, peer.peer_uuid, peer.peer_name,
                                   ctx.site_uuid)
        by_id = {s.id: s for s in members}
        async with ctx.engine.begin() as conn:
            for subcloud_id, columns in outcome.updates.items():
                await subclouds_db.apply_transition(conn, subcloud_id, transition(by_id[subcloud_id], **columns))
            for subcloud_id in outcome.deletes:
                await subclouds_db.delete_subcloud(conn, subcloud_id)
            changes = {**outcome.group_changes, "needs_audit": False}
            await peer_groups_db.update_peer_group(conn, group.id, changes)
            if outcome.alarm is not None:
                await audit_db.raise_alarms(conn, [(None, outcome.alarm)], utcnow())
            if outcome.clear_alarm is not None:
                await associations_db.clear_alarm(conn, AlarmId.PEER_GROUP_NOT_MANAGED, outcome.clear_alarm)
        if outcome.updates or outcome.deletes:
            log.info("peer group %s audited against %s: %d updated, %d deleted", group.peer_group_name,
                     peer.peer_name, len(outcome.updates), len(outcome.deletes))
            ctx.subclouds_changed()
        if outcome.reset_remote:
            await site.clear_migration_status(group.peer_group_name)
        if outcome.changed:  # the peer's copy follows the new leader at the next sync
            async with ctx.engine.begin() as conn:
                await associations_db.mark_group_out_of_sync(conn, group.id, f"Peer group {group.peer_group_name} was audited "
                                                                 f"against {peer.peer_name}.")
            ctx.sync_wakeup.set()
    finally:
        await site.close()
