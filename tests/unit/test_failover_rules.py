"""The rules of automatic failover (dcman.domain.failover): when a standby takes a group over
from a lost leader, and whom a rehome may take a subcloud from."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dcman.domain.failover import (
    Claim,
    Verdict,
    Witness,
    ahead_of,
    claim,
    controller_seen,
    decide,
    priorities,
    strays,
    witness_bound,
)
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.states import PeerAvailability

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
SITE1, SITE2, SITE3 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", \
    "33333333-3333-4333-8333-333333333333"
ORDER = {SITE1: 0, SITE2: 1, SITE3: 2}
BOUND = witness_bound(1.0)
DOWN, UP = PeerAvailability.UNAVAILABLE, PeerAvailability.AVAILABLE


def copy(priority: int, password: str | None = "sealed") -> SubcloudPeerGroup:
    protection = json.dumps([{"peer_uuid": u, "priority": p} for u, p in ORDER.items()])
    return SubcloudPeerGroup(1, "pg1", priority, "enabled", 10, SITE1, "site1", None, False, NOW, NOW,
                             failover_password=password, protection=protection)


def silent(n: int) -> list[Witness]:
    return [Witness(f"sc{i}", True, SITE1, 30.0, 0) for i in range(n)]


def hearing(n: int) -> list[Witness]:
    return [Witness(f"sh{i}", True, SITE1, 0.4, 0) for i in range(n)]


def test_the_next_site_takes_over_when_a_majority_of_witnesses_no_longer_hear_the_leader():
    decision = decide(copy(1), SITE1, "site1", SITE2, ORDER, {SITE1: DOWN, SITE3: UP}, silent(3) + hearing(2), BOUND)
    assert decision.verdict is Verdict.TAKE_OVER and "3 of 5" in decision.message


def test_a_cut_between_sites_alone_moves_nothing():
    decision = decide(copy(1), SITE1, "site1", SITE2, ORDER, {SITE1: DOWN}, silent(2) + hearing(3), BOUND)
    assert decision.verdict is Verdict.LEADER_HEARD and "cut from each other" in decision.message


def test_without_enough_answers_a_person_decides():
    unanswered = [Witness(f"u{i}", False) for i in range(3)]
    decision = decide(copy(1), SITE1, "site1", SITE2, ORDER, {SITE1: DOWN}, silent(2) + unanswered, BOUND)
    assert decision.verdict is Verdict.CANNOT_CONFIRM and "a person must decide" in decision.message


def test_the_third_site_waits_while_the_second_is_not_known_to_be_down():
    for view in ({SITE1: DOWN, SITE2: UP}, {SITE1: DOWN}):  # up, or not a peer here: not known down
        decision = decide(copy(2), SITE1, "site1", SITE3, ORDER, view, silent(5), BOUND)
        assert decision.verdict is Verdict.NOT_MY_TURN
    assert decide(copy(2), SITE1, "site1", SITE3, ORDER, {SITE1: DOWN, SITE2: DOWN}, silent(5), BOUND).takes_over


def test_no_stored_password_no_automatic_failover():
    assert decide(copy(1, None), SITE1, "site1", SITE2, ORDER, {SITE1: DOWN}, silent(5), BOUND).verdict \
        is Verdict.NO_PASSWORD


def test_subclouds_answering_to_another_site_mean_it_took_over_already():
    others = [Witness(f"o{i}", True, SITE2, 0.2, 1) for i in range(3)]
    decision = decide(copy(2), SITE1, "site1", SITE3, ORDER, {SITE1: DOWN, SITE2: DOWN}, others + silent(2), BOUND)
    assert decision.verdict is Verdict.TAKEN_BY_OTHER and decision.other_leader == SITE2


def test_order_on_a_copy_comes_from_the_protection_list_and_on_the_primary_from_its_associations():
    assert priorities(copy(2), SITE3, []) == ORDER
    primary = SubcloudPeerGroup(1, "pg1", 0, "enabled", 10, SITE2, "site2", None, False, NOW, NOW)
    assert priorities(primary, SITE1, [(SITE2, 1), (SITE3, 2)]) == ORDER
    assert ahead_of(ORDER, SITE3, SITE1) == [SITE2] and ahead_of(ORDER, SITE2, SITE1) == []


def test_a_rehome_takes_from_the_leader_itself_or_a_later_site_and_yields_to_an_earlier_one():
    assert claim(SITE2, SITE1, ORDER, SITE1) is Claim.TAKE
    assert claim(SITE2, SITE1, ORDER, None) is Claim.TAKE
    assert claim(SITE2, SITE1, ORDER, SITE2) is Claim.TAKE
    assert claim(SITE2, SITE1, ORDER, SITE3) is Claim.TAKE
    assert claim(SITE3, SITE1, ORDER, SITE2) is Claim.YIELD
    assert claim(SITE3, SITE1, ORDER, "44444444-4444-4444-8444-444444444444") is Claim.YIELD


def test_the_audit_adopts_its_own_claims_epoch_and_notices_another_sites_claim():
    assert controller_seen({"system_controller": SITE2, "fencing_epoch": 3}, SITE2, 2) == (SITE2, 3)
    assert controller_seen({"system_controller": SITE2, "fencing_epoch": 3}, SITE2, 3) is None
    assert controller_seen({"system_controller": SITE3, "fencing_epoch": 4}, SITE2, 3) == (SITE3, 4)
    assert controller_seen({"system_controller": SITE3, "fencing_epoch": 3}, SITE2, 3) is None
    assert controller_seen({"system_controller": SITE3, "fencing_epoch": "4"}, SITE2, 3) is None


def test_a_leader_takes_back_only_members_a_later_site_holds():
    answers = [Witness("a", True, SITE3, 0.1, 2), Witness("b", True, SITE1, 0.1, 2), Witness("c", True, SITE2, 0.1, 1),
               Witness("d", False)]
    assert [w.name for w in strays(answers, SITE2, ORDER)] == ["a"]  # site1 comes first; c is its own
