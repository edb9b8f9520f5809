"""The consequences of a subcloud change, decided once (dcman.domain.transitions)."""

from __future__ import annotations

from dcman.domain.alarms import AlarmId
from dcman.domain.deploy import Step
from dcman.domain.states import AvailabilityStatus as A, DeployStatus as D, ManagementState as M
from dcman.domain.transitions import SubcloudState, Wake, endpoints_kept, transition

MANAGED = SubcloudState(D.COMPLETE, M.MANAGED, A.ONLINE)


def test_a_failed_rehome_drops_its_plan_and_frees_a_rehome_slot() -> None:
    change = transition(SubcloudState(D.REHOMING, M.UNMANAGED, A.OFFLINE), deploy_status=D.REHOME_FAILED)
    assert change.changes["plan"] == () and Wake.MIGRATION in change.wake
    assert "plan" not in transition(MANAGED, deploy_status=D.PRE_INSTALL).changes
    requeued = transition(SubcloudState(D.REHOME_FAILED, M.UNMANAGED, A.OFFLINE), plan=(Step.REHOME,))
    assert requeued.changes["plan"] == (Step.REHOME,)  # the next migrate queues it again


def test_leaving_management_resets_the_endpoints_but_dc_cert_and_the_alarm_summary() -> None:
    change = transition(MANAGED, management_state=M.UNMANAGED)
    assert change.reset_endpoints == ("dc-cert",) and change.reset_alarm_summary
    pending = transition(MANAGED, management_state=M.UNMANAGED, deploy_status=D.REHOME_PENDING)
    assert pending.reset_endpoints == ()
    assert transition(MANAGED, description="x").reset_endpoints is None


def test_a_secondary_copy_loses_its_endpoints_and_its_offline_alarm() -> None:
    change = transition(SubcloudState(D.COMPLETE, M.UNMANAGED, A.OFFLINE), deploy_status=D.SECONDARY)
    assert change.reset_endpoints == () and change.clear_alarms == (AlarmId.SUBCLOUD_OFFLINE,)


def test_going_offline_resets_every_endpoint() -> None:
    assert endpoints_kept(MANAGED, MANAGED._replace(availability_status=A.OFFLINE)) == ()
    assert endpoints_kept(MANAGED, MANAGED) is None


def test_the_audit_is_woken_by_changes_of_audited_deploy_states_only() -> None:
    assert Wake.AUDIT in transition(SubcloudState(D.PRE_CONFIG, M.UNMANAGED, A.ONLINE),
                                    deploy_status=D.CONFIGURING).wake
    assert not transition(SubcloudState(D.CREATING, M.UNMANAGED, A.OFFLINE),
                          deploy_status=D.CREATE_COMPLETE, plan=(Step.BOOTSTRAP,)).wake
