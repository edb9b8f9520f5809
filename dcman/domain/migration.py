"""Rules of peer-group migration and of the peer-group audit (geo-redundancy reference §4,
§5): which subclouds a migration takes, what a peer may ask of a subcloud's copy, and what
the audit of a local group against the peer's copy changes. Pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Mapping
from typing import Any

from dcman.domain.alarms import Alarm, AlarmId, Severity
from dcman.domain.errors import InvalidInput, PermissionDenied
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.deploy import Step
from dcman.domain.states import (
    REHOMING_STATES,
    SECONDARY_STATES,
    AvailabilityStatus,
    DeployStatus,
    ManagementState,
    MigrationStatus,
)
from dcman.domain.subcloud import NO_ERRORS, Subcloud
from dcman.domain.transitions import Transition, transition

# The deploy plan that queues a subcloud for rehoming by the migration.
REHOME_PLAN: tuple[Step, ...] = (Step.REHOME,)
MIGRATABLE = frozenset({DeployStatus.SECONDARY, DeployStatus.REHOME_FAILED, DeployStatus.REHOME_PREP_FAILED})


def check_migrate(group: SubcloudPeerGroup, member_count: int, password: object) -> None:
    """§4 step 1: the refusals, each one sentence."""
    if not member_count:
        raise InvalidInput(f"Subcloud peer group {group.peer_group_name} has no subclouds to migrate.")
    if group.migrating:
        raise InvalidInput(f"Subcloud peer group {group.peer_group_name} is already migrating.")
    if password is None or (isinstance(password, str) and not password.strip()):
        raise InvalidInput("The sysadmin_password (base64) is required to migrate a subcloud peer group.")


def has_rehome_data(subcloud: Subcloud) -> bool:
    return subcloud.rehome is not None and bool(subcloud.rehome.saved_payload.get("bootstrap-address"))


def check_something_to_migrate(group: SubcloudPeerGroup, choice: "MigrationChoice") -> None:
    """As the reference: a migration with no subcloud to rehome is refused (a group this site
    already leads, for one), and changes nothing."""
    if not choice.queued:
        without = f" ({len(choice.prep_failed)} without rehome data)" if choice.prep_failed else ""
        raise InvalidInput(f"Nothing to migrate, no secondary, rehome-failed or rehome-prep-failed subcloud "
                           f"with rehome data in peer group {group.peer_group_name}{without}.")


@dataclass
class MigrationChoice:
    queued: list[int] = field(default_factory=list)       # go to the rehome queue
    prep_failed: list[int] = field(default_factory=list)  # no rehome data
    skipped: list[int] = field(default_factory=list)      # not in a migratable state


def choose_for_migration(members: list[Subcloud]) -> MigrationChoice:
    """§4 step 2 and 6: secondary, rehome-failed and rehome-prep-failed subclouds are
    migrated; one without rehome data goes to rehome-prep-failed; others are skipped."""
    choice = MigrationChoice()
    for subcloud in members:
        if subcloud.deploy_status not in MIGRATABLE:
            choice.skipped.append(subcloud.id)
        elif not has_rehome_data(subcloud):
            choice.prep_failed.append(subcloud.id)
        else:
            choice.queued.append(subcloud.id)
    return choice


class PeerAnswer(Enum):
    """How a peer answered the request to let a subcloud go (§4 step 4)."""

    RELEASED = "released"    # it unmanaged its copy, or has none
    REFUSED = "refused"      # it answered no: that subcloud is not migrated
    NO_ANSWER = "no-answer"  # unreachable or failing: wait until it answers or is declared down


def peer_answer(status: int | None) -> PeerAnswer:
    """Classify the peer's HTTP status (None: no answer at all). A 5xx is no answer either: the
    peer may still manage the subcloud, and only the heartbeat may declare it gone."""
    if status is None or status >= 500:
        return PeerAnswer.NO_ANSWER
    if status == 404:
        return PeerAnswer.RELEASED
    return PeerAnswer.REFUSED if status >= 400 else PeerAnswer.RELEASED


def waiting_message(peer_name: str, waiting: int, reason: str) -> str:
    """The group's migration_message while a peer that may still manage its subclouds is silent."""
    return (f"Waiting for system peer {peer_name} to release {waiting} subcloud(s), or to be declared "
            f"unavailable by its heartbeat, before rehoming them: {reason}"[:2000])


def migration_finished(members: list[Subcloud]) -> bool:
    """No subcloud of the group is queued or being rehomed any more."""
    return not any(s.deploy_status in REHOMING_STATES or is_queued(s) for s in members)


YIELDED_MARK = "took it over first"


def yielded(subcloud: Subcloud, controller: str, epoch: int | None) -> Transition:
    """A rehome that found the subcloud claimed by a site before this one in the group's
    takeover order (or that lost the claim at the agent): it stays secondary here."""
    why = (f"Subcloud {subcloud.name} answers to site {controller}"
           f"{'' if epoch is None else f' (fencing epoch {epoch})'}, which {YIELDED_MARK}; it stays secondary here.")
    return transition(subcloud, deploy_status=DeployStatus.SECONDARY, plan=(), error_description=why[:2000])


_YIELDED = re.compile(r"answers to site ([0-9a-f-]{36})")


@dataclass(frozen=True)
class Yielded:
    """A finished migration that did not take the group: who did (as the subclouds said), and why."""

    winner: str | None
    message: str


def yielded_to(members: list[Subcloud]) -> Yielded | None:
    """Whether some member of a finished migration yielded to another site (None: the group
    is this site's)."""
    lost = [s for s in members if s.deploy_status == DeployStatus.SECONDARY and YIELDED_MARK in (s.error_description or "")]
    if not lost:
        return None
    found = _YIELDED.search(lost[0].error_description or "")
    return Yielded(found.group(1) if found else None,
                   f"{len(lost)} subcloud(s) answer to another site, which took the group over first: "
                   f"{lost[0].error_description}"[:2000])


def awaits_management(subcloud: Subcloud) -> bool:
    """Rehomed to this site by a migration and not yet managed: it is managed as soon as it is
    seen online, also after the migration stopped waiting for it (manage is refused to an
    operator for a peer-group member, so nobody else could)."""
    return (subcloud.deploy_status == DeployStatus.COMPLETE and subcloud.rehomed
            and subcloud.management_state == ManagementState.UNMANAGED)


def is_queued(subcloud: Subcloud) -> bool:
    """Waiting for its turn to be rehomed (the migrate request queued it)."""
    return subcloud.plan == REHOME_PLAN and subcloud.deploy_status in MIGRATABLE


def queued_for_rehome(subcloud: Subcloud, sysadmin_password: str) -> Transition:
    """§4 step 2: the subcloud waits in the rehome queue, with the password the migrate brought."""
    return transition(subcloud, plan=REHOME_PLAN, sysadmin_password=sysadmin_password, error_description=NO_ERRORS)


def rehome_refused(subcloud: Subcloud, why: str) -> Transition:
    """§4 step 6: a subcloud that cannot be rehomed (no rehome data, or its peer kept it)."""
    return transition(subcloud, deploy_status=DeployStatus.REHOME_PREP_FAILED, error_description=why[:2000])


def rehome_started(subcloud: Subcloud) -> Transition:
    """§4 step 5: a slot of the group is free; the deploy reconciler runs the rehome phase."""
    return transition(subcloud, deploy_status=DeployStatus.PRE_REHOME, deploy_progress=0)


def managed_after_rehome(subcloud: Subcloud) -> Transition:
    """A rehomed subcloud seen online is managed here (see awaits_management)."""
    return transition(subcloud, management_state=ManagementState.MANAGED)


# --- the peer-group audit (§5) --------------------------------------------------------------


@dataclass
class AuditOutcome:
    updates: dict[int, dict[str, str]] = field(default_factory=dict)  # subcloud id -> columns
    deletes: list[int] = field(default_factory=list)                 # set secondary, then deleted
    group_changes: dict[str, Any] = field(default_factory=dict)
    alarm: Alarm | None = None      # 280.005 to raise
    clear_alarm: str | None = None  # entity of 280.005 to clear
    reset_remote: bool = False      # PATCH the peer's group migration_status none

    @property
    def changed(self) -> bool:
        return bool(self.updates or self.deletes)


def operator_audit_refused() -> PermissionDenied:
    """Only a peer site sends its copy of a group to be audited against (§5): what anyone else is told."""
    return PermissionDenied("The peer group audit is called by a peer site only.")


def lower_priority_alarm_entity(group_name: str, peer_uuid: str) -> str:
    return f"peer_group={group_name},peer={peer_uuid}"


def audit_peer_group(local: SubcloudPeerGroup, remote: Mapping[str, object], local_members: list[Subcloud],
                     remote_members: list[dict[str, object]] | None, peer_uuid: str, peer_name: str,
                     site_uuid: str = "") -> AuditOutcome:
    """What the audit of `local` against the peer's copy `remote` changes (§5).
    `remote_members` (the peer's subclouds of the group) is needed only when the remote
    migration is complete. With more than two sites, a third site that neither led the group
    nor manages any of it only learns the new leader, and leaves the peer's `complete` for
    the old leader to see."""
    out = AuditOutcome()
    if local.migrating:
        return out
    remote_status = remote.get("migration_status")
    if remote_status == MigrationStatus.MIGRATING:
        for s in local_members:
            if s.deploy_status == DeployStatus.SECONDARY:
                continue  # a third site's copy: it stays secondary (and may take the group over later)
            if s.deploy_status != DeployStatus.REHOME_PENDING or s.management_state != ManagementState.UNMANAGED:
                out.updates[s.id] = {"deploy_status": DeployStatus.REHOME_PENDING.value,
                                     "management_state": ManagementState.UNMANAGED.value}
        return out
    if remote_status != MigrationStatus.COMPLETE:
        out.group_changes = _leader_learned(local, remote, peer_uuid, peer_name, site_uuid)
        return out
    by_region = {m.get("region-name"): m for m in (remote_members or [])}
    for s in local_members:
        there = by_region.get(s.region_name)
        if there is None:
            out.deletes.append(s.id)
        elif there.get("management-state") == ManagementState.MANAGED and s.deploy_status not in SECONDARY_STATES:
            # A secondary subcloud is not audited, so it is shown offline (lifecycle §2.4).
            out.updates[s.id] = {"deploy_status": DeployStatus.SECONDARY.value,
                                 "management_state": ManagementState.UNMANAGED.value,
                                 "availability_status": AvailabilityStatus.OFFLINE.value}
    if not out.changed and local.system_leader_id != site_uuid:
        out.group_changes = _leader_learned(local, remote, peer_uuid, peer_name, site_uuid)
        return out
    # This site led the group (its copies may have stepped aside already, by their fencing
    # epochs), or held some of it: the peer leads it now.
    entity = lower_priority_alarm_entity(local.peer_group_name, peer_uuid)
    remote_priority = remote.get("group_priority")
    if isinstance(remote_priority, int) and local.group_priority < remote_priority:
        out.alarm = Alarm(AlarmId.PEER_GROUP_NOT_MANAGED, entity, Severity.MAJOR,
                          "subcloud peer group managed by remote system with a lower priority")
    else:
        out.clear_alarm = entity
    out.group_changes = {"system_leader_id": peer_uuid, "system_leader_name": peer_name}
    out.reset_remote = True
    return out


def _leader_learned(local: SubcloudPeerGroup, remote: Mapping[str, object], peer_uuid: str, peer_name: str,
                    site_uuid: str) -> dict[str, Any]:
    """The leader change of a site that only watches: the peer says it leads the group, and this
    site neither leads it (that is the old leader's audit above) nor already knows."""
    if remote.get("system_leader_id") == peer_uuid and local.system_leader_id not in (peer_uuid, site_uuid):
        return {"system_leader_id": peer_uuid, "system_leader_name": peer_name}
    return {}


def audit_wanted(local: SubcloudPeerGroup, remote: Mapping[str, object], peer_uuid: str, site_uuid: str) -> bool:
    """Whether a heartbeat's view of the peer's copy calls for the audit (§2 step 3): the group
    is flagged, the peer migrates it, its migration is complete and this site does not follow
    it yet, or [dcman] the peer says it leads a group this site thinks another site leads."""
    status = remote.get("migration_status")
    if local.needs_audit or status == MigrationStatus.MIGRATING:
        return True
    if status == MigrationStatus.COMPLETE:
        return local.system_leader_id != peer_uuid
    return remote.get("system_leader_id") == peer_uuid and local.system_leader_id not in (peer_uuid, site_uuid)
