"""The automatic failover reconciler (heartbeat policy `rehome`, dcman.domain.failover).

Each round looks at every peer group led by a system peer that is `unavailable` here and
whose record here has `heartbeat_failure_policy: rehome`; for each it asks a few of the
group's subclouds whether they still hear from that leader, and migrates the group exactly
as an operator's `migrate` would when the rules say so. Alarm 280.006 says what it did or
why it did not. Level-triggered: a round decides from what it reads now, so a restart, or a
peer that comes back, simply changes the next round's answer.
"""

from __future__ import annotations

import asyncio
import logging

from dcman.db import associations as associations_db
from dcman.db import audit as audit_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.db.clock import utcnow
from dcman.domain.alarms import AlarmId
from dcman.domain.errors import DomainError
from dcman.domain.failover import (
    WITNESS_SAMPLE,
    Decision,
    Verdict,
    Witness,
    decide,
    failover_alarm,
    failover_entity,
    priorities,
    strays,
    witness_bound,
    witnesses_to_ask,
)
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.peers import SystemPeer
from dcman.domain.states import AdministrativeState, HeartbeatFailurePolicy, PeerAvailability
from dcman.domain.deploy import REHOME_ENDED_FAILED
from dcman.domain.subcloud import Subcloud
from dcman.drivers.agent_client import AgentError, basic_auth
from dcman.loops import runner
from dcman.loops.runner import Timing
from dcman.services import migration
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.failover")
# A lost leader is noticed within one round of its heartbeat's verdict (the heartbeat has
# taken interval x threshold already); the witnesses are asked at most once a round.
TIMING = Timing(idle_s=2.0)


async def ask_witness(ctx: SiteContext, subcloud: Subcloud, auth: str) -> Witness:
    """One sampled subcloud's view of its controller (answered=False when it does not answer)."""
    try:
        answer = await ctx.agents.status(subcloud.management_start_ip, auth)
    except AgentError:
        return Witness(subcloud.name, answered=False)
    body = answer.body if answer.status == 200 and isinstance(answer.body, dict) else None
    if body is None:
        return Witness(subcloud.name, answered=False)
    controller, heard, epoch = body.get("system_controller"), body.get("controller_heard_s"), body.get("fencing_epoch")
    return Witness(subcloud.name, True, controller if isinstance(controller, str) else None,
                   float(heard) if isinstance(heard, (int, float)) and not isinstance(heard, bool) else None,
                   epoch if type(epoch) is int else None)


class Failover:
    """One round over the groups whose leader this site has lost."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.shown: dict[int, str] = {}  # group id -> the alarm text raised for it (this process)
        self.names: dict[str, str] = {}  # peer uuid -> name, as of this round

    async def round(self) -> None:
        """Decide for every group; returns nothing: the runner's idle tick paces the rounds."""
        ctx = self.ctx
        async with ctx.engine.connect() as conn:
            peers = await peers_db.list_peers(conn)
            groups = await peer_groups_db.list_peer_groups(conn)
        by_uuid = {p.peer_uuid: p for p in peers}
        availability = {p.peer_uuid: PeerAvailability(p.availability_state) for p in peers}
        self.names = {p.peer_uuid: p.peer_name for p in peers}
        for group in groups:
            leader = by_uuid.get(group.system_leader_id)
            try:
                if leader is not None and _lost_with_rehome_policy(leader) and not group.migrating:
                    await self._consider(group, leader, availability)
                else:
                    await self._settled(group, availability)
                if group.system_leader_id == self.ctx.site_uuid and not group.migrating:
                    await self._take_back_strays(group)
            except Exception:  # the next round tries again
                log.exception("automatic failover of peer group %s: round failed", group.peer_group_name)

    async def _consider(self, group: SubcloudPeerGroup, leader: SystemPeer,
                        availability: dict[str, PeerAvailability]) -> None:
        ctx = self.ctx
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
            associated = await associations_db.associated_priorities(conn, group.id)
        if not members:
            return
        order = priorities(group, ctx.site_uuid, associated)
        bound = witness_bound(ctx.settings.audit_interval)
        decision = decide(group, leader.peer_uuid, leader.peer_name, ctx.site_uuid, order, availability, None, bound,
                          self.names)
        if decision.verdict is Verdict.CANNOT_CONFIRM:  # the site-level rules allow it: ask the subclouds
            auth = basic_auth(ctx.secrets.decrypt(group.failover_password or ""))
            sample = witnesses_to_ask(members)
            witnesses = list(await asyncio.gather(*(ask_witness(ctx, s, auth) for s in sample)))
            decision = decide(group, leader.peer_uuid, leader.peer_name, ctx.site_uuid, order, availability,
                              witnesses, bound, self.names)
        if decision.takes_over:
            try:
                await migration.start_migration(ctx, str(group.id), ctx.secrets.decrypt(group.failover_password or ""))
            except DomainError as exc:  # e.g. nothing left to migrate: say so instead
                decision = Decision(Verdict.CANNOT_CONFIRM, f"{decision.message} The migration did not start: "
                                    f"{exc.message}")
            else:
                log.warning("peer group %s: %s", group.peer_group_name, decision.message)
        await self._show(group, decision)

    async def _take_back_strays(self, group: SubcloudPeerGroup) -> None:
        """A group this site took over whose rehome failed for some members (this site was cut
        from them) while a site after it in the takeover order claimed them: once they answer,
        they are migrated again, so the group does not stay split between two sites."""
        ctx = self.ctx
        if group.failover_password is None:
            return
        async with ctx.engine.connect() as conn:
            members = await peer_groups_db.subclouds_of_group(conn, group.id)
            associated = await associations_db.associated_priorities(conn, group.id)
        failed = [s for s in members if s.deploy_status in REHOME_ENDED_FAILED and s.management_start_ip]
        if not failed:
            return
        order = priorities(group, ctx.site_uuid, associated)
        auth = basic_auth(ctx.secrets.decrypt(group.failover_password))
        answers = await asyncio.gather(*(ask_witness(ctx, s, auth) for s in failed[:WITNESS_SAMPLE]))
        taken = strays(list(answers), ctx.site_uuid, order)
        if not taken:
            return
        try:
            await migration.start_migration(ctx, str(group.id), ctx.secrets.decrypt(group.failover_password))
        except DomainError as exc:
            log.warning("peer group %s: cannot take back subclouds another site holds: %s", group.peer_group_name,
                        exc.message)
            return
        log.warning("peer group %s: %d subcloud(s) answer to site %s, after this one in the takeover order: "
                    "migrating them again", group.peer_group_name, len(taken), taken[0].system_controller)

    async def _show(self, group: SubcloudPeerGroup, decision: Decision) -> None:
        """Raise 280.006 with the decision's text (replacing an older text)."""
        if self.shown.get(group.id) == decision.message:
            return
        alarm = failover_alarm(group.peer_group_name, decision)
        async with self.ctx.engine.begin() as conn:
            await associations_db.clear_alarm(conn, AlarmId.AUTOMATIC_FAILOVER, alarm.entity_instance_id)
            await audit_db.raise_alarms(conn, [(None, alarm)], utcnow())
        if decision.verdict is not Verdict.TAKE_OVER:
            log.info("peer group %s: %s", group.peer_group_name, decision.message)
        self.shown[group.id] = decision.message

    async def _settled(self, group: SubcloudPeerGroup, availability: dict[str, PeerAvailability]) -> None:
        """A group whose leader is not lost (any more): 280.006 is cleared once its leader is
        available, or, for a group this site took over, once every associated peer is."""
        if group.migrating:
            return
        if group.system_leader_id == self.ctx.site_uuid:
            async with self.ctx.engine.connect() as conn:
                associated = await associations_db.associated_priorities(conn, group.id)
            if any(availability.get(uuid) is not PeerAvailability.AVAILABLE for uuid, _ in associated):
                return
        elif availability.get(group.system_leader_id) is not PeerAvailability.AVAILABLE:
            return
        if self.shown.pop(group.id, None) is None and not await _alarm_raised(self.ctx, group):
            return
        async with self.ctx.engine.begin() as conn:
            await associations_db.clear_alarm(conn, AlarmId.AUTOMATIC_FAILOVER, failover_entity(group.peer_group_name))


def _lost_with_rehome_policy(peer: SystemPeer) -> bool:
    return (peer.heartbeat_failure_policy == HeartbeatFailurePolicy.REHOME
            and peer.administrative_state == AdministrativeState.ENABLED
            and peer.availability_state == PeerAvailability.UNAVAILABLE)


async def _alarm_raised(ctx: SiteContext, group: SubcloudPeerGroup) -> bool:
    async with ctx.engine.connect() as conn:
        return await audit_db.alarm_raised(conn, AlarmId.AUTOMATIC_FAILOVER, failover_entity(group.peer_group_name))


async def run(ctx: SiteContext) -> None:
    failover = Failover(ctx)

    async def round_() -> float | None:
        await failover.round()
        return None

    await runner.run("automatic failover", round_, TIMING)
