"""The peer heartbeat's hysteresis (dcman.domain.peers.after_heartbeat)."""

from __future__ import annotations

from dcman.domain.peers import PeerHealth, after_heartbeat
from dcman.domain.states import PeerAvailability as P


def test_a_peer_is_unavailable_only_after_threshold_failed_beats_in_a_row() -> None:
    health = PeerHealth(P.AVAILABLE, 0)
    seen = []
    for _ in range(4):
        health = after_heartbeat(health, ok=False, threshold=3)
        seen.append(health)
    assert seen == [PeerHealth(P.AVAILABLE, 1), PeerHealth(P.AVAILABLE, 2), PeerHealth(P.UNAVAILABLE, 3),
                    PeerHealth(P.UNAVAILABLE, 4)]


def test_one_answered_beat_makes_it_available_and_resets_the_count() -> None:
    assert after_heartbeat(PeerHealth(P.UNAVAILABLE, 7), ok=True, threshold=3) == PeerHealth(P.AVAILABLE, 0)
    assert after_heartbeat(PeerHealth(P.CREATED, 0), ok=True, threshold=3) == PeerHealth(P.AVAILABLE, 0)


def test_a_new_peer_that_never_answers_stays_created_until_the_threshold() -> None:
    assert after_heartbeat(PeerHealth(P.CREATED, 0), ok=False, threshold=2) == PeerHealth(P.CREATED, 1)
    assert after_heartbeat(PeerHealth(P.CREATED, 1), ok=False, threshold=2) == PeerHealth(P.UNAVAILABLE, 2)
