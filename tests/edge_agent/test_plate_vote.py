"""Voting one plate per passage: consensus across frames beats one confident read; below the floor, unread."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config.lane import GeometryConfig, PolicyConfig
from edge_agent.decision import decide
from edge_agent.domain import PlateRead, Reason, Verdict
from edge_agent.ids import new_id
from edge_agent.journal import passage_payload
from edge_agent.plate_vote import vote, within_one
from edge_agent.schemas import validate
from tests.edge_agent.test_decision import TODAY, passage, record, view

FLOOR = 0.6


def reads(*pairs: tuple[str, float]) -> list[PlateRead]:
    return [PlateRead(text, conf, "front", float(i)) for i, (text, conf) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("a", "b", "near"),
    [
        ("ABC1234", "ABC1234", True),
        ("ABC1234", "ABC1284", True),  # one substitution
        ("ABC1234", "ABC234", True),  # one deletion
        ("ABC234", "ABC1234", True),  # one insertion
        ("ABC1234", "ABC12345", True),
        ("ABC1234", "XBC1284", False),
        ("ABC1234", "AB1234X", False),
        ("ABC1234", "ABC12", False),
        ("", "A", True),
    ],
)
def test_within_one_character(a: str, b: str, near: bool) -> None:
    assert within_one(a, b) is near


@given(st.text("AB0", max_size=6), st.text("AB0", max_size=6))
def test_within_one_is_symmetric(a: str, b: str) -> None:
    assert within_one(a, b) is within_one(b, a)


def test_agreeing_reads_beat_one_very_confident_read() -> None:
    v = vote(reads(("ABC1234", 0.70), ("ABC1234", 0.72), ("ABC1Z34", 0.75), ("XYZ9876", 0.99)), FLOOR)
    assert v.text == "ABC1234"
    assert (v.frames, v.accepted, v.rejected, v.agreed) == (4, 4, 0, 3)
    assert v.confidence == pytest.approx(0.71)  # the mean of its exact reads, not inflated
    assert v.best is not None and v.best.confidence == 0.72


def test_among_near_misses_the_text_read_exactly_most_often_wins() -> None:
    v = vote(reads(("ABC1284", 0.95), ("ABC1234", 0.7), ("ABC1234", 0.7), ("ABC234", 0.9)), FLOOR)
    assert v.text == "ABC1234" and v.agreed == 4


def test_below_the_floor_the_plate_is_unread_never_a_guess() -> None:
    v = vote(reads(("ABC1234", 0.59), ("ABC1234", 0.55), ("", 0.0)), FLOOR)
    assert v.text is None and v.confidence is None and v.best is None
    assert (v.frames, v.accepted, v.rejected, v.agreed) == (3, 0, 3, 0)


def test_frames_with_nothing_legible_are_counted_as_rejected() -> None:
    v = vote(reads(("", 0.0), ("", 0.0), ("KZT4821", 0.9)), FLOOR)
    assert (v.text, v.frames, v.accepted, v.rejected) == ("KZT4821", 3, 1, 2)


def test_the_same_reads_in_any_order_give_the_same_vote() -> None:
    pairs = [("ABC123", 0.8), ("ABD123", 0.8), ("ABC124", 0.8), ("ABD124", 0.8)]
    assert len({vote(reads(*p), FLOOR).text for p in (pairs, pairs[::-1], pairs[1:] + pairs[:1])}) == 1


def test_the_decision_uses_the_vote_and_the_payload_carries_it() -> None:
    plates = tuple(reads(("ABC1234", 0.7), ("ABC1234", 0.8), ("XBC1234", 0.99), ("", 0.0)))
    p = replace(passage(plate=None), passage_id=new_id(), plates=plates, plate_vote=vote(plates, FLOOR))
    d = decide(p, view(record()), PolicyConfig(), GeometryConfig(), TODAY)
    assert d.decision.verdict is Verdict.RELEASE  # the consensus read matches the record, not the outlier
    payload = passage_payload(
        d, site_id="S", lane_id="L", decided_at=datetime(2026, 11, 28, tzinfo=UTC), latency_ms=1
    )
    validate("passage", payload)
    assert payload["vehicle"]["plate"] == "ABC1234"
    assert payload["vehicle"]["plate_confidence"] == 0.75
    assert payload["plate_vote"] == {"frames": 4, "accepted": 3, "rejected": 1, "agreed": 3}


def test_an_unread_vote_refers_as_plate_unread_even_with_reads_below_the_floor() -> None:
    plates = tuple(reads(("ABC1234", 0.5), ("ABC1234", 0.4)))
    p = replace(passage(plate=None), plates=plates, plate_vote=vote(plates, FLOOR))
    assert p.best_plate is None
    d = decide(p, view(record()), PolicyConfig(), GeometryConfig(), TODAY)
    assert Reason.PLATE_UNREAD in d.decision.reasons
