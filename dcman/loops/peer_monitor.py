"""The peer monitor: one heartbeat task per system peer (geo-redundancy reference §2).

Every `heartbeat_interval` the task asks the peer site for its subcloud peer groups. After
`heartbeat_failure_threshold` failures in a row the peer is `unavailable`: alarm 280.004 is
raised (critical when the peer leads local peer groups), its associations go out of sync
and the groups shared with it are flagged for audit. The first success after that makes it
`available` again, clears the alarm and wakes the association sync. The task re-reads its
peer every beat, so interval and threshold changes apply at once.
"""

from __future__ import annotations

import asyncio
import logging

from dcman import metrics
from dcman.db import associations as associations_db
from dcman.db import audit as audit_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.db.clock import utcnow
from dcman.domain.alarms import AlarmId, heartbeat_alarm, peer_entity
from dcman.domain.peers import SystemPeer
from dcman.domain.states import AdministrativeState, PeerAvailability
from dcman.drivers.peer_client import PeerClient, PeerError
from dcman.services.context import SiteContext
from dcman.services.migration import audit_group

log = logging.getLogger("dcman.peers")


def client_for(ctx: SiteContext, peer: SystemPeer) -> PeerClient:
    return PeerClient(peer.manager_endpoint, peer.manager_username, ctx.secrets.decrypt(peer.manager_password),
                      ca_file=ctx.settings.peer_ca_file, timeout=min(10.0, peer.heartbeat_interval / 2), retries=0)


async def _load(ctx: SiteContext, peer_id: int) -> SystemPeer | None:
    async with ctx.engine.connect() as conn:
        return await peers_db.get_peer(conn, peer_id)


async def record_beat(ctx: SiteContext, peer: SystemPeer, ok: bool, reason: str | None = None) -> None:
    """Apply one heartbeat's outcome to the peer, its alarm, associations and groups; `reason`
    (why a failed beat failed) goes into the alarm's text."""
    failures = 0 if ok else peer.heartbeat_failures + 1
    state = peer.availability_state
    if ok and state != PeerAvailability.AVAILABLE:
        state = PeerAvailability.AVAILABLE.value
    elif not ok and failures >= peer.heartbeat_failure_threshold and state != PeerAvailability.UNAVAILABLE:
        state = PeerAvailability.UNAVAILABLE.value
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
            local = {g.peer_group_name: g for g in await peer_groups_db.list_peer_groups(conn) if g.id in shared}
    except Exception:
        log.exception("listing the groups shared with peer %s failed", peer_id)
        return
    if peer is None or peer.availability_state != PeerAvailability.AVAILABLE:
        return
    for remote in remote_groups:
        group = local.get(remote.get("peer_group_name")) if isinstance(remote, dict) else None
        if group is None or not (group.needs_audit or remote.get("migration_status") in ("migrating", "complete")):
            continue
        try:
            await audit_group(ctx, group, peer, remote)
        except Exception as exc:  # the next beat retries
            log.warning("audit of peer group %s against %s failed: %s", group.peer_group_name, peer.peer_name, exc)


async def monitor(ctx: SiteContext, peer_id: int) -> None:
    client: PeerClient | None = None
    key = None
    try:
        while (peer := await _load(ctx, peer_id)) is not None:
            if peer.administrative_state == AdministrativeState.ENABLED:
                if key != (peer.manager_endpoint, peer.manager_username, peer.manager_password):
                    if client is not None:
                        await client.close()
                    client, key = client_for(ctx, peer), (peer.manager_endpoint, peer.manager_username,
                                                         peer.manager_password)
                remote_groups, reason = None, None
                try:
                    remote_groups = (await client.call("GET", "/subcloud-peer-groups"))["subcloud_peer_groups"]
                    ok = True
                except (PeerError, ValueError) as exc:
                    log.info("heartbeat to %s failed: %s", peer.peer_name, exc)
                    ok, reason = False, str(exc)
                except (KeyError, TypeError):
                    ok = True  # it answered; its list is just not readable
                metrics.heartbeat(peer.peer_name, ok)
                try:
                    await record_beat(ctx, peer, ok, reason)
                except Exception:
                    log.exception("recording a heartbeat of %s failed", peer.peer_name)
                if ok and remote_groups:
                    await audit_shared_groups(ctx, peer.id, remote_groups)
            await asyncio.sleep(peer.heartbeat_interval)
    finally:
        if client is not None:
            await client.close()


async def run(ctx: SiteContext) -> None:
    """Keep one monitor task per system peer, started and stopped as peers come and go."""
    tasks: dict[int, asyncio.Task] = {}
    while True:
        ctx.peers_wakeup.clear()
        try:
            async with ctx.engine.connect() as conn:
                ids = {p.id for p in await peers_db.list_peers(conn)}
            for peer_id in ids - tasks.keys():
                tasks[peer_id] = asyncio.create_task(monitor(ctx, peer_id), name=f"peer-{peer_id}")
            for peer_id in list(tasks):
                if peer_id not in ids or tasks[peer_id].done():
                    tasks.pop(peer_id).cancel()
        except Exception:
            log.exception("peer monitor tick failed")
        try:
            await asyncio.wait_for(ctx.peers_wakeup.wait(), 2.0)
        except TimeoutError:
            pass
