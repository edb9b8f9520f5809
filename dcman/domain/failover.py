"""Automatic failover (heartbeat policy `rehome`): when a standby site may take a peer group
over from a leader it has lost, and whom a rehome may take a subcloud from. Pure functions;
the safety argument they implement is in the README ("Automatic failover, and why it is safe").

A standby acts only on what it and the subclouds see, never on what it cannot see:

* the leader is `unavailable` to this site (its heartbeat failed `threshold` times);
* every site ahead of this one in the group's takeover order (a lower priority, other than
  the leader) is unavailable to this site too;
* a majority of a sample of the group's subclouds *answer*, still name the leader as their
  system controller, and have not heard from it for longer than the witness bound.

A cut between the sites alone leaves the subclouds hearing from their leader: nothing moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from dcman.domain.alarms import Alarm, AlarmId, Severity
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.states import AvailabilityStatus, DeployStatus, ManagementState, PeerAvailability
from dcman.domain.subcloud import Subcloud
from dcman.domain.transitions import Transition, transition

# Subclouds asked per decision: enough for a majority to mean something, few enough that a
# standby watching a dead leader costs a handful of requests per heartbeat.
WITNESS_SAMPLE = 5
# How many audit intervals a subcloud must have gone without hearing from its controller.
WITNESS_INTERVALS = 3


def witness_bound(audit_interval_s: float) -> float:
    """Seconds a witness must not have heard from the leader (the leader audits, and so reaches,
    each of its subclouds once per audit interval; sites of one group run the same interval)."""
    return WITNESS_INTERVALS * audit_interval_s


@dataclass(frozen=True)
class Witness:
    """What one sampled subcloud's agent said (answered False: no answer at all)."""

    name: str
    answered: bool
    system_controller: str | None = None
    heard_s: float | None = None
    fencing_epoch: int | None = None


class Verdict(Enum):
    TAKE_OVER = "take-over"            # migrate the group now
    NOT_MY_TURN = "not-my-turn"        # a better-placed site may still be alive
    LEADER_HEARD = "leader-heard"      # the sites are cut from each other; the leader lives
    CANNOT_CONFIRM = "cannot-confirm"  # too few witnesses answer: a person must decide
    TAKEN_BY_OTHER = "taken-by-other"  # the subclouds already answer to another site
    NO_PASSWORD = "no-password"        # nothing to rehome with


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    message: str
    other_leader: str | None = None  # TAKEN_BY_OTHER: the site the subclouds answer to

    @property
    def takes_over(self) -> bool:
        return self.verdict is Verdict.TAKE_OVER


def priorities(group: SubcloudPeerGroup, site_uuid: str, associated: list[tuple[str, int]]) -> dict[str, int]:
    """The takeover order of a group as this site knows it: the protection list its primary's
    sync sent, or, on the primary itself, its own associations (uuid, priority there)."""
    known = dict(group.priorities)
    if group.group_priority == 0:
        known.update(associated)
    known[site_uuid] = group.group_priority
    return known


def ahead_of(order: Mapping[str, int], site_uuid: str, leader_uuid: str) -> list[str]:
    """The sites before this one in the takeover order, other than the lost leader."""
    mine = order.get(site_uuid)
    if mine is None:
        return []
    return sorted((uuid for uuid, priority in order.items() if priority < mine and uuid not in (site_uuid, leader_uuid)),
                  key=lambda uuid: order[uuid])


def witnesses_to_ask(members: list[Subcloud]) -> list[Subcloud]:
    """A bounded sample of the group's copies here, spread over the group (every k-th by id, so
    that one rack of subclouds cut off with the leader does not decide alone)."""
    candidates = [s for s in members if s.deploy_status == DeployStatus.SECONDARY and s.management_start_ip]
    if len(candidates) <= WITNESS_SAMPLE:
        return candidates
    step = len(candidates) / WITNESS_SAMPLE
    return [candidates[int(i * step)] for i in range(WITNESS_SAMPLE)]


def decide(group: SubcloudPeerGroup, leader_uuid: str, leader_name: str, site_uuid: str,
           order: Mapping[str, int], availability: Mapping[str, PeerAvailability | None],
           witnesses: list[Witness] | None, bound_s: float, names: Mapping[str, str] | None = None) -> Decision:
    """Whether this site takes `group` over from its lost leader now. `availability`: this
    site's view of every other site it peers with (None: not a peer here); `witnesses`: the
    sampled subclouds' answers (None: not asked yet, because an earlier rule already says no);
    `names`: the peers' names by uuid, for the messages."""
    names = names or {}
    name = group.peer_group_name
    if group.failover_password is None:
        return Decision(Verdict.NO_PASSWORD, f"System peer {leader_name} leads peer group {name} and is unavailable, "
                        "but this site holds no sysadmin_password for the group: it cannot fail over by itself; "
                        "migrate it by hand, or give the password (subcloud-peer-group update).")
    for other in ahead_of(order, site_uuid, leader_uuid):
        if availability.get(other) is not PeerAvailability.UNAVAILABLE:
            return Decision(Verdict.NOT_MY_TURN, f"Site {names.get(other, other)} comes before this site for peer "
                            f"group {name} and is not known to be down; it takes the group over.")
    if witnesses is None:
        return Decision(Verdict.CANNOT_CONFIRM, f"Peer group {name}: no subcloud asked yet.")
    asked, answers = len(witnesses), [w for w in witnesses if w.answered]
    others = {w.system_controller for w in answers if w.system_controller not in (leader_uuid, site_uuid, None)}
    if others and len([w for w in answers if w.system_controller in others]) * 2 > asked:
        other = sorted(others)[0]
        return Decision(Verdict.TAKEN_BY_OTHER, f"The subclouds of peer group {name} already answer to site "
                        f"{names.get(other, other)}; this site stays secondary.", other_leader=other)
    silent = [w for w in answers if w.system_controller == leader_uuid and w.heard_s is not None and w.heard_s > bound_s]
    hearing = [w for w in answers if w.system_controller == leader_uuid and not (w.heard_s is not None
                                                                                 and w.heard_s > bound_s)]
    if asked and len(silent) * 2 > asked:
        return Decision(Verdict.TAKE_OVER, f"System peer {leader_name} is unavailable and {len(silent)} of {asked} "
                        f"sampled subclouds of peer group {name} have not heard from it for over {bound_s:g}s: "
                        "this site took the group over automatically.")
    if asked and len(hearing) * 2 > asked:
        return Decision(Verdict.LEADER_HEARD, f"System peer {leader_name} is unreachable from this site, but "
                        f"{len(hearing)} of {asked} sampled subclouds of peer group {name} still hear from it: the "
                        "sites are cut from each other, nothing moved.")
    return Decision(Verdict.CANNOT_CONFIRM, f"System peer {leader_name} is unavailable and only {len(silent)} of "
                    f"{asked} sampled subclouds of peer group {name} confirm it is gone ({len(answers)} answered): "
                    "nothing moved; a person must decide (subcloud-peer-group migrate).")


def failover_alarm(group_name: str, decision: Decision) -> Alarm:
    """Alarm 280.006 (dcman's): what the automatic failover did, or why it did not."""
    severity = Severity.MAJOR if decision.verdict in (Verdict.TAKE_OVER, Verdict.CANNOT_CONFIRM,
                                                      Verdict.NO_PASSWORD) else Severity.MINOR
    return Alarm(AlarmId.AUTOMATIC_FAILOVER, failover_entity(group_name), severity, decision.message[:255])


def failover_entity(group_name: str) -> str:
    return f"peer_group={group_name}"


# --- whom a rehome may take a subcloud from ----------------------------------------------------


class Claim(Enum):
    TAKE = "take"        # claim the subcloud (a compare-and-set on what its agent said)
    YIELD = "yield"      # another site holds it and comes first: stay secondary


def claim(site_uuid: str, leader_uuid: str, order: Mapping[str, int], controller: str | None) -> Claim:
    """A rehome takes a subcloud from no one, from itself (a rerun), from the group's leader as
    this site knows it, or from a site that comes after this one in the takeover order; it
    yields to any other site, so two survivors racing for one group end with the first in
    order leading all of it."""
    if controller in (None, site_uuid, leader_uuid):
        return Claim.TAKE
    mine, theirs = order.get(site_uuid), order.get(controller)
    if mine is not None and theirs is not None and mine < theirs:
        return Claim.TAKE
    return Claim.YIELD


# --- what the audit concludes from a subcloud's controller and epoch -------------------------


def controller_seen(status: object, site_uuid: str, my_epoch: int) -> tuple[str, int] | None:
    """(controller, epoch) from a managed subcloud's status when it tells this site something:
    another site claimed it since this site's epoch (this site is fenced: it steps aside), or
    this site's own claim holds an epoch it has not stored (a restart between the claim and
    storing it: the site adopts it). None otherwise."""
    if not isinstance(status, dict):
        return None
    controller, epoch = status.get("system_controller"), status.get("fencing_epoch")
    if not isinstance(controller, str) or type(epoch) is not int:
        return None
    if controller == site_uuid:
        return (controller, epoch) if epoch != my_epoch else None
    return (controller, epoch) if epoch > my_epoch else None


def stepped_aside(subcloud: Subcloud, controller: str, epoch: int) -> Transition:
    """A managed subcloud that another site claimed (a higher epoch): this site lets it go at
    once, as the peer-group audit would once it can reach that site, and keeps it secondary."""
    why = (f"Subcloud {subcloud.name} answers to site {controller} since fencing epoch {epoch}; this site no "
           "longer manages it and keeps it secondary.")
    return transition(subcloud, management_state=ManagementState.UNMANAGED, deploy_status=DeployStatus.SECONDARY,
                      availability_status=AvailabilityStatus.OFFLINE, error_description=why[:2000])


def strays(witnesses: list[Witness], site_uuid: str, order: Mapping[str, int]) -> list[Witness]:
    """The members of a group this site leads that answer to a site after it in the takeover
    order (they were claimed while this site was cut from them): to be migrated again."""
    return [w for w in witnesses if w.answered and w.system_controller not in (None, site_uuid)
            and claim(site_uuid, site_uuid, order, w.system_controller) is Claim.TAKE]
