"""The peer monitor: one heartbeat task per system peer (geo-redundancy reference §2).

Every `heartbeat_interval` the task asks the peer site for its subcloud peer groups. After
`heartbeat_failure_threshold` failures in a row the peer is `unavailable`: alarm 280.004 is
raised (critical when the peer leads local peer groups), its associations go out of sync
and the groups shared with it are flagged for audit. The first success after that makes it
`available` again, clears the alarm and wakes the association sync. The task re-reads its
peer every beat, so interval and threshold changes apply at once.
"""

from __future__ import annotations

import logging
from functools import partial

from dcman import metrics
from dcman.db import associations as associations_db
from dcman.db import audit as audit_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.db.clock import utcnow
from dcman.domain.alarms import AlarmId, heartbeat_alarm, peer_entity
from dcman.domain.peers import PeerHealth, SystemPeer, after_heartbeat
from dcman.domain.states import AdministrativeState, PeerAvailability
from dcman.drivers.peer_site import PeerError, PeerSite, UnreadableAnswer
from dcman.loops import runner
from dcman.loops.runner import Tasks, Timing
from dcman.services.context import SiteContext
from dcman.domain.migration import audit_wanted
from dcman.services.migration import audit_group

log = logging.getLogger("dcman.peers")
PEERS_TICK_S = 2.0


async def _load(ctx: SiteContext, peer_id: int) -> SystemPeer | None:
    async with ctx.engine.connect() as conn:
        return await peers_db.get_peer(conn, peer_id)


async def record_beat(ctx: SiteContext, peer: SystemPeer, ok: bool, reason: str | None = None) -> None:
    """Apply one heartbeat's outcome to the peer, its alarm, associations and groups; `reason`
    (why a failed beat failed) goes into the alarm's text."""
    health = after_heartbeat(PeerHealth.of(peer), ok, peer.heartbeat_failure_threshold)
    state, failures = health.availability.value, health.failures
    now = utcnow()
    async with ctx.engine.begin() as conn:
        await peers_db.record_heartbeat(conn, peer.id, now, ok)
        if state == peer.availability_state and failures == peer.heartbeat_failures:
            return
        await peers_db.set_peer_health(conn, peer.id, state, failures)
        if state != peer.availability_state:
            log.warning("system peer %s: %s -> %s", peer.peer_name, peer.availability_state, state)
            if state == PeerAvailability.UNAVAILABLE:
                led = await associations_db.groups_led_by(conn, peer.peer_uuid)
                alarm = heartbeat_alarm(peer.peer_uuid, peer.peer_name, led, reason)
                await audit_db.raise_alarms(conn, [(None, alarm)], now)
                await associations_db.mark_peer_associations(conn, peer.id, "out-of-sync",
                                                             f"System peer {peer.peer_name} is unavailable.")
                await associations_db.flag_shared_groups_for_audit(conn, peer.id)
            else:
                await associations_db.clear_alarm(conn, AlarmId.SYSTEM_PEER_HEARTBEAT_FAILED, peer_entity(peer.peer_uuid))
    if state == PeerAvailability.AVAILABLE and peer.availability_state != PeerAvailability.AVAILABLE:
        ctx.sync_wakeup.set()  # the association sync catches up now
    if state == PeerAvailability.UNAVAILABLE and peer.availability_state != PeerAvailability.UNAVAILABLE:
        ctx.migration_wakeup.set()  # a migration waiting for this peer to answer goes on now


async def audit_shared_groups(ctx: SiteContext, peer_id: int, remote_groups: list[dict]) -> None:
    """§2.3: each local group shared with the peer is audited against the peer's copy when it
    is flagged "needs audit" or when the peer's copy says its migration is complete; dcman
    also audits while the peer's copy is migrating, so a site that restarts in the middle of
    its peer's migration lets go of the subclouds at once instead of managing them too."""
    try:
        async with ctx.engine.connect() as conn:
            peer = await peers_db.get_peer(conn, peer_id)
            shared = {a.peer_group_id for a in await associations_db.list_associations(conn) if a.system_peer_id == peer_id}
            # With more than two sites, a group is also shared with every site of its protection list.
            local = {g.peer_group_name: g for g in await peer_groups_db.list_peer_groups(conn)
                     if g.id in shared or (peer is not None and peer.peer_uuid in g.priorities)}
    except Exception:
        log.exception("listing the groups shared with peer %s failed", peer_id)
        return
    if peer is None or peer.availability_state != PeerAvailability.AVAILABLE:
        return
    for remote in remote_groups:
        group = local.get(remote.get("peer_group_name")) if isinstance(remote, dict) else None
        if group is None or not audit_wanted(group, remote, peer.peer_uuid, ctx.site_uuid):
            continue
        try:
            await audit_group(ctx, group, peer, remote)
        except Exception as exc:  # the next beat retries
            log.warning("audit of peer group %s against %s failed: %s", group.peer_group_name, peer.peer_name, exc)


class PeerMonitor:
    """The heartbeat of one system peer: its client is kept from beat to beat, made again
    when the peer's endpoint or account changes."""

    def __init__(self, ctx: SiteContext, peer_id: int) -> None:
        self.ctx, self.peer_id = ctx, peer_id
        self.site: PeerSite | None = None
        self.key: tuple[str, str, str] | None = None

    async def close(self) -> None:
        if self.site is not None:
            await self.site.close()
        self.site = self.key = None

    async def connected(self, peer: SystemPeer) -> PeerSite:
        key = (peer.manager_endpoint, peer.manager_username, peer.manager_password)
        if self.site is None or key != self.key:
            await self.close()
            # A beat is not retried: the next beat is, and a slow one must not delay it.
            self.site = self.ctx.peer_site(peer, timeout=min(10.0, peer.heartbeat_interval / 2), retries=0)
            self.key = key
        return self.site

    async def beat(self) -> float:
        """One heartbeat; returns the peer's interval, re-read every beat so a change applies at once."""
        ctx = self.ctx
        peer = await _load(ctx, self.peer_id)
        if peer is None:  # deleted: the peers loop stops this task
            return 1.0
        if peer.administrative_state == AdministrativeState.ENABLED:
            site = await self.connected(peer)
            remote_groups, reason = None, None
            try:
                remote_groups = await site.peer_groups()
                ok = True
            except UnreadableAnswer:
                ok = True  # it answered; its list is just not readable
            except (PeerError, ValueError) as exc:
                log.info("heartbeat to %s failed: %s", peer.peer_name, exc)
                ok, reason = False, str(exc)
            metrics.heartbeat(peer.peer_name, ok)
            try:
                await record_beat(ctx, peer, ok, reason)
            except Exception:
                log.exception("recording a heartbeat of %s failed", peer.peer_name)
            if ok and remote_groups:
                await audit_shared_groups(ctx, peer.id, remote_groups)
        return float(peer.heartbeat_interval)


async def monitor(ctx: SiteContext, peer_id: int) -> None:
    heartbeat = PeerMonitor(ctx, peer_id)
    try:
        await runner.run(f"heartbeat of peer {peer_id}", heartbeat.beat, Timing(PEERS_TICK_S))
    finally:
        await heartbeat.close()


class PeersLoop:
    """Keeps one heartbeat task per system peer, started and stopped as peers come and go."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.monitors = Tasks("heartbeat")

    async def reconcile(self) -> None:
        async with self.ctx.engine.connect() as conn:
            ids = {p.id for p in await peers_db.list_peers(conn)}
        await self.monitors.stop(set(self.monitors.running) - ids)
        for peer_id in ids - self.monitors.running.keys():
            self.monitors.start(peer_id, partial(monitor, self.ctx, peer_id))


async def run(ctx: SiteContext) -> None:
    await runner.run("peer monitor", PeersLoop(ctx).reconcile, Timing(PEERS_TICK_S), ctx.peers_wakeup)
