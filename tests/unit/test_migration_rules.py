"""The migration and peer-group audit rules (geo-redundancy §4, §5) as pure functions."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from dcman.db import subclouds as subclouds_db
from dcman.domain.deploy import Step, check_abort, recovered_state
from dcman.domain.errors import InvalidInput, PermissionDenied, StateRefused
from dcman.domain.migration import (
    REHOME_PLAN,
    audit_peer_group,
    awaits_management,
    check_migrate,
    choose_for_migration,
    is_queued,
    migration_finished,
    operator_audit_refused,
)
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.states import ManagementState
from dcman.domain.subcloud import Subcloud, check_management_change, check_migrate_flag, check_release_mark

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
PEER = "6a9a2f3c-0f6e-4f43-9d3f-3a8d1f0c2b11"
REHOME = json.dumps({"saved_payload": {"name": "x", "bootstrap-address": "10.0.0.1"}})


def subcloud(id: int, deploy_status: str = "secondary", management: str = "unmanaged", region: str | None = None,
             rehome_data: str | None = REHOME, plan: tuple[Step, ...] = ()) -> Subcloud:
    fields = {f.name: None for f in dataclasses.fields(Subcloud)}
    fields.update(id=id, name=f"sc{id}", region_name=region or f"r{id}", deploy_status=deploy_status,
                  management_state=management, availability_status="online", rehome=subclouds_db.decode_rehome(rehome_data),
                  plan=plan, rehomed=False, created_at=NOW)
    return Subcloud(**fields)


def group(priority: int = 1, migration: str | None = None) -> SubcloudPeerGroup:
    return SubcloudPeerGroup(1, "pg1", priority, "enabled", 10, "leader", "site1", migration, False, NOW, NOW)


def test_migrate_is_refused_without_subclouds_while_migrating_and_without_password():
    with pytest.raises(InvalidInput, match="no subclouds"):
        check_migrate(group(), 0, "cGFzcw==")
    with pytest.raises(InvalidInput, match="already migrating"):
        check_migrate(group(migration="migrating"), 2, "cGFzcw==")
    with pytest.raises(InvalidInput, match="sysadmin_password"):
        check_migrate(group(), 2, None)
    check_migrate(group(migration="complete"), 2, "cGFzcw==")  # a rerun after a migration


def test_migration_takes_secondary_and_failed_rehomes_and_fails_those_without_rehome_data():
    choice = choose_for_migration([subcloud(1), subcloud(2, "rehome-failed"), subcloud(3, "rehome-prep-failed"),
                                   subcloud(4, rehome_data=None), subcloud(5, "complete", "managed"),
                                   subcloud(6, "rehome-pending")])
    assert (choice.queued, choice.prep_failed, choice.skipped) == ([1, 2, 3], [4], [5, 6])


def test_a_peer_releases_a_copy_as_the_reference_does_unless_it_is_being_rehomed_here():
    """The migrating site asks `management-state: unmanaged` with `migrate: true` (§4 step 4)."""
    managed = subcloud(1, "complete", "managed")
    unmanage = check_management_change(managed, ManagementState.UNMANAGED, False)
    assert check_release_mark(managed, True, unmanage["management_state"]) == {
        "deploy_status": "rehome-pending"}
    assert check_release_mark(subcloud(2, "secondary"), True, None) == {
        "deploy_status": "rehome-pending"}
    with pytest.raises(InvalidInput):  # an operator marks only deployed subclouds
        check_migrate_flag(subcloud(2, "secondary"), True, None)
    for rehoming in ("pre-rehome", "rehoming"):
        with pytest.raises(StateRefused, match="being rehomed"):
            check_release_mark(subcloud(3, rehoming), True, None)


def test_a_migration_is_finished_when_nothing_is_queued_or_rehoming():
    assert not migration_finished([subcloud(1, plan=REHOME_PLAN)])
    assert not migration_finished([subcloud(1, "rehoming")])
    # A subcloud being rehomed keeps its plan until done, but is not queued a second time.
    assert not is_queued(subcloud(1, "rehoming", plan=REHOME_PLAN)) and is_queued(subcloud(1, plan=REHOME_PLAN))
    assert migration_finished([subcloud(1, "complete", "managed"), subcloud(2, "rehome-failed")])


def test_only_a_rehomed_complete_unmanaged_subcloud_awaits_management_by_the_migration():
    rehomed = dataclasses.replace(subcloud(1, "complete"), rehomed=True)
    assert awaits_management(rehomed)
    assert not awaits_management(dataclasses.replace(rehomed, management_state="managed"))
    assert not awaits_management(dataclasses.replace(rehomed, rehomed=False))  # deployed here: the operator's
    assert not awaits_management(dataclasses.replace(rehomed, deploy_status="secondary"))


def test_a_rehome_cut_short_by_a_crash_fails_and_cannot_be_aborted():
    assert recovered_state("pre-rehome") == "rehome-prep-failed"
    assert recovered_state("rehoming") == "rehome-failed"
    with pytest.raises(StateRefused):
        check_abort("sc1", "rehoming")
    assert Step.REHOME.value == "rehome"


def test_audit_does_nothing_while_the_local_group_migrates():
    out = audit_peer_group(group(migration="migrating"), {"migration_status": "complete"},
                           [subcloud(1, "complete", "managed")], [], PEER, "site2", "leader")
    assert not out.changed and not out.reset_remote


def test_audit_of_a_remote_migration_in_progress_unmanages_the_local_copies():
    out = audit_peer_group(group(0), {"migration_status": "migrating"},
                           [subcloud(1, "complete", "managed"), subcloud(2, "rehome-pending")], None, PEER, "site2", "leader")
    assert out.updates == {1: {"deploy_status": "rehome-pending", "management_state": "unmanaged"}}
    assert not out.reset_remote


def test_audit_of_a_completed_remote_migration_makes_secondaries_deletes_the_absent_and_raises_280_005():
    remote = [{"region-name": "r1", "management-state": "managed"},
              {"region-name": "r2", "management-state": "unmanaged"}]
    out = audit_peer_group(group(0), {"migration_status": "complete", "group_priority": 2},
                           [subcloud(1, "complete", "managed"), subcloud(2, "complete", "managed"), subcloud(3)],
                           remote, PEER, "site2", "leader")
    assert out.updates == {1: {"deploy_status": "secondary", "management_state": "unmanaged",
                               "availability_status": "offline"}}
    assert out.deletes == [3]
    assert out.group_changes == {"system_leader_id": PEER, "system_leader_name": "site2"}
    assert out.alarm is not None and out.alarm.alarm_id == "280.005"
    assert out.alarm.entity_instance_id == f"peer_group=pg1,peer={PEER}" and out.alarm.severity == "major"
    assert out.reset_remote


def test_audit_clears_280_005_when_the_peer_is_the_better_site_and_changes_nothing_when_in_line():
    remote = [{"region-name": "r1", "management-state": "managed"}]
    out = audit_peer_group(group(2), {"migration_status": "complete", "group_priority": 0},
                           [subcloud(1, "complete", "managed")], remote, PEER, "site1", "leader")
    assert out.alarm is None and out.clear_alarm == f"peer_group=pg1,peer={PEER}"
    calm = audit_peer_group(group(2), {"migration_status": "complete", "group_priority": 0},
                            [subcloud(1)], remote, PEER, "site1", "leader")
    # Already in line (e.g. its subclouds stepped aside by their fencing epoch): it follows the leader.
    assert not calm.changed and calm.group_changes == {"system_leader_id": PEER, "system_leader_name": "site1"}
    assert calm.reset_remote
    assert not audit_peer_group(group(2), {"migration_status": "none"}, [subcloud(1, "complete", "managed")],
                                None, PEER, "site1", "leader").changed


def test_only_a_peer_site_asks_for_an_audit():
    assert isinstance(operator_audit_refused(), PermissionDenied)


def test_a_third_site_only_learns_the_new_leader_and_leaves_its_complete_status_for_the_old_leader():
    """site3 (priority 2) watches site2 (priority 1) take pg1 over from site1 ("leader")."""
    remote = [{"region-name": "r1", "management-state": "managed"}]
    copy = {"migration_status": "complete", "group_priority": 1, "system_leader_id": PEER}
    out = audit_peer_group(group(2), copy, [subcloud(1)], remote, PEER, "site2", "site3-uuid")
    assert not out.changed and not out.reset_remote
    assert out.group_changes == {"system_leader_id": PEER, "system_leader_name": "site2"}
    migrating = audit_peer_group(group(2), {"migration_status": "migrating"}, [subcloud(1)], None, PEER, "site2",
                                 "site3-uuid")
    assert migrating.updates == {}  # its secondary copy stays secondary
    settled = audit_peer_group(group(2), {"migration_status": "none", "system_leader_id": PEER}, [subcloud(1)], None,
                               PEER, "site2", "site3-uuid")
    assert settled.group_changes == {"system_leader_id": PEER, "system_leader_name": "site2"}
