"""Peer-group migration and the peer-group audit (geo-redundancy reference §4, §5).

`migrate` only writes the desired state: the group becomes `migrating` and its chosen
subclouds get the rehome plan. `advance` (run by the migration loop) then asks the
available peers to let each subcloud go, moves it to `pre-rehome` for the deploy
reconciler, manages it once rehomed and online, and ends the migration. Everything it
needs is in the database, so a restart carries on where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

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
    awaits_management,
    check_audit_request,
    PeerAnswer,
    check_migrate,
    check_something_to_migrate,
    choose_for_migration,
    is_queued,
    lower_priority_alarm_entity,
    managed_after_rehome,
    migration_finished,
    peer_answer,
    queued_for_rehome,
    rehome_refused,
    rehome_started,
    waiting_message,
)
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.peers import SystemPeer
from dcman.domain.states import (
    REHOMING_STATES,
    AvailabilityStatus,
    DeployStatus,
    ManagementState,
    MigrationStatus,
    PeerAvailability,
)
from dcman.domain.subcloud import Subcloud
from dcman.domain.transitions import transition
from dcman.drivers.peer_client import PeerClient, PeerError, subcloud_path
from dcman.services.context import SiteContext
from dcman.services.forms import decode_password
from dcman.services.subclouds import SubcloudView

log = logging.getLogger("dcman.migration")


def peer_client(ctx: SiteContext, peer: SystemPeer) -> PeerClient:
    return PeerClient(peer.manager_endpoint, peer.manager_username, ctx.secrets.decrypt(peer.manager_password),
                      ca_file=ctx.settings.peer_ca_file, timeout=10.0, retries=1)


async def _group(conn: Any, ref: str) -> SubcloudPeerGroup:
    group = await peer_groups_db.get_peer_group(conn, ref)
    if group is None:
        raise NotFound(f"Subcloud peer group {ref} not found.")
    return group


async def _peers_of(conn: Any, group_id: int) -> list[SystemPeer]:
    peers = []
    for association in await associations_db.list_associations(conn, group_id):
        peer = await peers_db.get_peer(conn, association.system_peer_id)
        if peer is not None:
            peers.append(peer)
    return peers


def group_copy(group: SubcloudPeerGroup) -> dict[str, Any]:
    """This site's copy of a group, as the peer's audit reads it."""
    return {"peer_group_name": group.peer_group_name, "group_priority": group.group_priority,
            "group_state": group.group_state, "max_subcloud_rehoming": group.max_subcloud_rehoming,
            "system_leader_id": group.system_leader_id, "system_leader_name": group.system_leader_name,
            "migration_status": group.migration_status}


# --- migrate (§4) ---------------------------------------------------------------------------


async def migrate(ctx: SiteContext, ref: str, body: Any) -> tuple[SubcloudPeerGroup, list[SubcloudView]]:
    """Start a migration: the group and the subclouds it queued for rehoming (the reference
    answers those; the dcmanager client shows them)."""
    if not isinstance(body, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    async with ctx.engine.begin() as conn:
        group = await peer_groups_db.get_peer_group(conn, ref, for_update=True)
        if group is None:
            raise NotFound(f"Subcloud peer group {ref} not found.")
        members = await peer_groups_db.subclouds_of_group(conn, group.id)
        check_migrate(group, len(members), body.get("sysadmin_password"))
        password = decode_password("sysadmin_password", body.get("sysadmin_password"))
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


# A peer that did not answer a release is asked again after this long, not every round.
SILENT_PEER_RETRY_S = 2.0


@dataclass
class Release:
    """What the available peers answered for a batch of subclouds about to be rehomed."""

    refused: dict[int, str] = field(default_factory=dict)  # subcloud id -> why it stays here
    unanswered: set[int] = field(default_factory=set)      # a peer may still manage these: wait
    waiting_for: str | None = None                          # the group's migration_message


class Migrations:
    """The state the migration loop keeps between rounds: only timers, rebuilt after a restart."""

    def __init__(self) -> None:
        self.waiting_online: dict[int, float] = {}
        self.silent: dict[int, tuple[float, str]] = {}  # peer id -> (ask again after, why)

    async def advance(self, ctx: SiteContext) -> bool:
        """One round over every migrating group, and over the groups this site leads for
        rehomed subclouds that came online late; True while some migration work remains."""
        async with ctx.engine.connect() as conn:
            groups = await peer_groups_db.list_peer_groups(conn)
        busy = False
        for group in groups:
            try:
                if group.migrating:
                    busy = await self._advance_group(ctx, group) or busy
                elif group.system_leader_id == ctx.site_uuid:
                    async with ctx.engine.connect() as conn:
                        members = await peer_groups_db.subclouds_of_group(conn, group.id)
                    await self._manage_online(ctx, members)
            except Exception:
                log.exception("migration of peer group %s: round failed", group.peer_group_name)
                busy = True
        return busy

    async def _manage_online(self, ctx: SiteContext, members: list[Subcloud]) -> bool:
        """Manage the rehomed members seen online; True while another is still within the wait
        for coming online. One transaction for all: the deploy drivers share the write lock."""
        rehomed = [s for s in members if awaits_management(s)]
        online = [s for s in rehomed if s.availability_status == AvailabilityStatus.ONLINE]
        if online:
            async with ctx.engine.begin() as conn:
                for s in online:
                    await subclouds_db.apply_transition(conn, s.id, managed_after_rehome(s),
                                                        only_if={"deploy_status": DeployStatus.COMPLETE})
            for s in online:
                self.waiting_online.pop(s.id, None)
                log.info("subcloud %s rehomed and online: managed", s.name)
            ctx.subclouds_changed()
        return self._still_waiting(ctx, [s for s in rehomed if s.availability_status != AvailabilityStatus.ONLINE])

    async def _advance_group(self, ctx: SiteContext, group: SubcloudPeerGroup) -> bool:
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
            peers = await _peers_of(conn, group.id)
        waiting = await self._manage_online(ctx, members)
        running = sum(1 for s in members if s.deploy_status in REHOMING_STATES)
        room = max(0, group.max_subcloud_rehoming - running)
        chosen = [s for s in members if is_queued(s)][:room]
        if chosen:
            available = [p for p in peers if p.availability_state == PeerAvailability.AVAILABLE]
            release = await self._release_on_peers(ctx, chosen, available)
            async with ctx.engine.begin() as conn:
                for s in chosen:
                    if s.id in release.unanswered:
                        continue  # still queued: rehomed once its old site lets go or is declared down
                    change = rehome_refused(s, release.refused[s.id]) if s.id in release.refused \
                        else rehome_started(s)
                    await subclouds_db.apply_transition(conn, s.id, change, only_if={"deploy_status": s.deploy_status})
                if release.waiting_for != group.migration_message:
                    await peer_groups_db.update_peer_group(conn, group.id, {"migration_message": release.waiting_for})
            if release.waiting_for != group.migration_message:
                log.info("peer group %s: %s", group.peer_group_name, release.waiting_for or "no longer waiting")
            ctx.deploy_wakeup.set()
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
        # Rehomed during this round: the next round manages it.
        waiting = self._still_waiting(ctx, [s for s in members if awaits_management(s)]) or waiting
        if not migration_finished(members) or waiting:
            return True
        await self._complete(ctx, group, peers)
        return False

    def _still_waiting(self, ctx: SiteContext, offline: list[Subcloud]) -> bool:
        """Start the online timer of each rehomed subcloud not yet online; True while one is
        still within DCMAN_REHOME_ONLINE_TIMEOUT."""
        now = time.monotonic()
        limit = ctx.settings.rehome_online_timeout
        return any(now - self.waiting_online.setdefault(s.id, now) < limit for s in offline)

    async def _release_on_peers(self, ctx: SiteContext, subclouds: list[Subcloud],
                                peers: list[SystemPeer]) -> Release:
        """Ask every available peer to let each subcloud go, as the reference does (unmanage
        and `migrate`, by region name), one client (one login) per peer. A peer that does not
        answer may still manage them: they wait, never rehomed behind its back."""
        release = Release()
        now = time.monotonic()
        for peer in peers:
            retry_at, reason = self.silent.get(peer.id, (0.0, ""))
            if now < retry_at:
                release.unanswered.update(s.id for s in subclouds)
                release.waiting_for = waiting_message(peer.peer_name, len(subclouds), reason)
                continue
            client = peer_client(ctx, peer)
            try:
                for subcloud in subclouds:
                    if subcloud.id in release.refused or subcloud.id in release.unanswered:
                        continue
                    try:
                        await _let_go(client, subcloud)
                    except PeerError as exc:
                        answer = peer_answer(exc.status)
                        if answer is PeerAnswer.REFUSED:
                            release.refused[subcloud.id] = (f"System peer {peer.peer_name} did not release "
                                                            f"subcloud {subcloud.name}: {exc}")
                        elif answer is PeerAnswer.NO_ANSWER:  # nor will it for the others, this round
                            self.silent[peer.id] = (time.monotonic() + SILENT_PEER_RETRY_S, str(exc))
                            waiting = [s.id for s in subclouds if s.id not in release.refused]
                            release.unanswered.update(waiting)
                            release.waiting_for = waiting_message(peer.peer_name, len(waiting), str(exc))
                            break
                else:
                    self.silent.pop(peer.id, None)
            finally:
                await client.close()
        return release

    async def _complete(self, ctx: SiteContext, group: SubcloudPeerGroup, peers: list[SystemPeer]) -> None:
        async with ctx.engine.begin() as conn:
            await peer_groups_db.update_peer_group(conn, group.id, {
                "migration_status": MigrationStatus.COMPLETE.value, "system_leader_id": ctx.site_uuid,
                "system_leader_name": ctx.settings.site_name, "migration_message": None})
            if group.group_priority == 0:
                for peer in peers:
                    await associations_db.clear_alarm(conn, AlarmId.PEER_GROUP_NOT_MANAGED,
                                                      lower_priority_alarm_entity(group.peer_group_name, peer.peer_uuid))
            done = await _group(conn, str(group.id))
        log.info("peer group %s: migration complete", group.peer_group_name)
        for peer in peers:
            if peer.availability_state != PeerAvailability.AVAILABLE:
                continue  # it audits against our copy when it is back (§5)
            client = peer_client(ctx, peer)
            try:
                await client.call("PATCH", f"/subcloud-peer-groups/{group.peer_group_name}/audit",
                                  json={**group_copy(done), "peer_uuid": ctx.site_uuid})
            except PeerError as exc:
                log.warning("peer group %s: the audit on %s failed: %s", group.peer_group_name, peer.peer_name, exc)
            finally:
                await client.close()


async def _let_go(client: PeerClient, subcloud: Subcloud) -> None:
    """Have the peer unmanage its copy and mark it rehome-pending (nothing to do when it has
    none, or already did); raises PeerError with the peer's status when it will not."""
    there = await client.call("GET", subcloud_path(subcloud.region_name, "/detail"))
    unmanaged = there.get("management-state") == ManagementState.UNMANAGED
    if unmanaged and there.get("deploy-status") == DeployStatus.REHOME_PENDING:
        return
    request: dict[str, str] = {"migrate": "true"}
    if not unmanaged:
        request["management-state"] = ManagementState.UNMANAGED.value
    await client.call("PATCH", subcloud_path(subcloud.region_name), json=request)


# --- the peer-group audit (§5) --------------------------------------------------------------


async def audit_from_peer(ctx: SiteContext, ref: str, body: Any, from_peer: bool) -> dict[str, Any]:
    """PATCH …/{group}/audit: the peer sends its copy of the group and its uuid."""
    check_audit_request(from_peer)
    if not isinstance(body, Mapping) or not isinstance(body.get("peer_uuid"), str):
        raise InvalidInput("The audit needs the peer's copy of the group and its peer_uuid.")
    async with ctx.engine.connect() as conn:
        group = await _group(conn, ref)
        peer = await peers_db.get_peer(conn, body["peer_uuid"])
    if peer is None:
        raise InvalidInput(f"System peer {body['peer_uuid']} does not exist on this site.")
    await audit_group(ctx, group, peer, dict(body))
    async with ctx.engine.connect() as conn:
        return group_copy(await _group(conn, str(group.id)))


async def audit_group(ctx: SiteContext, group: SubcloudPeerGroup, peer: SystemPeer, remote: dict[str, Any]) -> None:
    """Reconcile the local group with the peer's copy `remote` (the group's fields as the
    API shows them)."""
    client = peer_client(ctx, peer)
    try:
        remote_members = None
        if remote.get("migration_status") == MigrationStatus.COMPLETE:
            remote_members = (await client.call("GET", f"/subcloud-peer-groups/{group.peer_group_name}/subclouds")
                              )["subclouds"]
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
        outcome = audit_peer_group(group, remote, members, remote_members, peer.peer_uuid, peer.peer_name)
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
            await client.call("PATCH", f"/subcloud-peer-groups/{group.peer_group_name}",
                              json={"migration_status": MigrationStatus.NONE.value})
        if outcome.changed:  # the peer's copy follows the new leader at the next sync
            async with ctx.engine.begin() as conn:
                await associations_db.mark_group_out_of_sync(conn, group.id, f"Peer group {group.peer_group_name} was audited "
                                                                 f"against {peer.peer_name}.")
            ctx.sync_wakeup.set()
    finally:
        await client.close()
