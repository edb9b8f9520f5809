"""The migration reconciler: advances every `migrating` peer group (geo-redundancy reference §4).

`migrate` (dcman.services.migration) only wrote the desired state. Each round asks the
available peers to let each queued subcloud go, moves it to `pre-rehome` for the deploy
reconciler, manages it once rehomed and online, and ends the migration. Everything it
needs is in the database, so a restart carries on where it stopped. Fast while a migration
runs, idle otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.alarms import AlarmId
from dcman.domain.migration import (
    PeerAnswer,
    awaits_management,
    is_queued,
    lower_priority_alarm_entity,
    managed_after_rehome,
    migration_finished,
    peer_answer,
    rehome_refused,
    rehome_started,
    waiting_message,
    yielded_to,
)
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.peers import SystemPeer
from dcman.domain.states import (
    REHOMING_STATES,
    AvailabilityStatus,
    DeployStatus,
    MigrationStatus,
    PeerAvailability,
)
from dcman.domain.subcloud import Subcloud
from dcman.drivers.peer_site import PeerError
from dcman.loops import runner
from dcman.loops.runner import Timing
from dcman.services.context import SiteContext
from dcman.services.migration import _group, group_copy

log = logging.getLogger("dcman.migration")
BUSY_TICK_S = 0.5
# Woken when a rehome ends, so a freed slot is filled at once; a round reads the whole
# group, so rounds are at least MIN_GAP_S apart however many rehomes end.
TIMING = Timing(idle_s=5.0, min_gap_s=0.1)


async def _all_peers(ctx: SiteContext) -> list[SystemPeer]:
    async with ctx.engine.connect() as conn:
        return await peers_db.list_peers(conn)


async def _protecting_peers(conn: Any, group: SubcloudPeerGroup, peers: list[SystemPeer]) -> list[SystemPeer]:
    """The associated peers and, with more than two sites, every other site of the group's
    protection list this site peers with: each audits against the new leader's copy."""
    found = {p.id: p for p in peers}
    for peer in await peers_db.list_peers(conn):
        if peer.peer_uuid in group.priorities:
            found.setdefault(peer.id, peer)
    return list(found.values())


async def _peers_of(conn: Any, group_id: int) -> list[SystemPeer]:
    peers = []
    for association in await associations_db.list_associations(conn, group_id):
        peer = await peers_db.get_peer(conn, association.system_peer_id)
        if peer is not None:
            peers.append(peer)
    return peers


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
                        members = await peer_groups_db.rehomes_under_way(conn, group.id)
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
            under_way = await peer_groups_db.rehomes_under_way(conn, group.id)
            running = sum(1 for s in under_way if s.deploy_status in REHOMING_STATES)
            room = max(0, group.max_subcloud_rehoming - running)
            # One at least even without room: whether the queue is empty ends the migration.
            queue = await peer_groups_db.rehome_queue(conn, group.id, max(1, room))
            peers = await _peers_of(conn, group.id)
        waiting = await self._manage_online(ctx, under_way)
        chosen = [s for s in queue if is_queued(s)][:room]
        if chosen:
            available = [p for p in peers if p.availability_state == PeerAvailability.AVAILABLE]
            release = await self._release_on_peers(ctx, chosen, available)
            started: list[Subcloud] = []
            async with ctx.engine.begin() as conn:
                for s in chosen:
                    if s.id in release.unanswered:
                        continue  # still queued: rehomed once its old site lets go or is declared down
                    refused = s.id in release.refused
                    change = rehome_refused(s, release.refused[s.id]) if refused else rehome_started(s)
                    moved = await subclouds_db.apply_transition(conn, s.id, change,
                                                                only_if={"deploy_status": s.deploy_status})
                    if moved and not refused:
                        started.append(s)
                if release.waiting_for != group.migration_message:
                    await peer_groups_db.update_peer_group(conn, group.id, {"migration_message": release.waiting_for})
            for s in started:
                log.info("subcloud %s: %s -> %s", s.name, s.deploy_status, DeployStatus.PRE_REHOME)
            if release.waiting_for != group.migration_message:
                log.info("peer group %s: %s", group.peer_group_name, release.waiting_for or "no longer waiting")
            ctx.deploy_wakeup.set()
        # Read before this round's changes: a subcloud queued or being rehomed then keeps the
        # migration going, and nothing but this loop queues one, so "finished" is not stale.
        if not migration_finished([*under_way, *queue]) or waiting:
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
            site = ctx.peer_site(peer, retries=1)
            try:
                for subcloud in subclouds:
                    if subcloud.id in release.refused or subcloud.id in release.unanswered:
                        continue
                    try:
                        await site.release(subcloud.region_name)
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
                await site.close()
        return release

    async def _complete(self, ctx: SiteContext, group: SubcloudPeerGroup, peers: list[SystemPeer]) -> None:
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
            peers = await _protecting_peers(conn, group, peers)
        lost = yielded_to(members)
        if lost is not None:  # another site claimed its subclouds first: it leads, this site follows
            changes: dict[str, Any] = {"migration_status": None, "migration_message": lost.message}
            winner = next((p for p in await _all_peers(ctx) if p.peer_uuid == lost.winner), None)
            if winner is not None:
                changes.update(system_leader_id=winner.peer_uuid, system_leader_name=winner.peer_name)
            async with ctx.engine.begin() as conn:
                await peer_groups_db.update_peer_group(conn, group.id, changes)
            log.warning("peer group %s: migration ended without taking the group: %s", group.peer_group_name,
                        lost.message)
            return
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
            site = ctx.peer_site(peer, retries=1)
            try:
                await site.audit_peer_group(group.peer_group_name, group_copy(done), ctx.site_uuid)
            except PeerError as exc:
                log.warning("peer group %s: the audit on %s failed: %s", group.peer_group_name, peer.peer_name, exc)
            finally:
                await site.close()


async def run(ctx: SiteContext) -> None:
    migrations = Migrations()

    async def round_() -> float | None:
        return BUSY_TICK_S if await migrations.advance(ctx) else None

    await runner.run("migration", round_, TIMING, ctx.migration_wakeup)
