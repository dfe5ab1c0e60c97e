"""The signal's permission as a pure function: each refusal and its recorded reason, in order."""

from __future__ import annotations

import pytest

from edge_agent.domain import Reason
from edge_agent.signal_policy import SignalState, refusal

OPEN = SignalState(True, False, None, {}, None, {})


def test_an_open_running_signal_allows_green() -> None:
    assert refusal(OPEN, "p1") is None


@pytest.mark.parametrize(
    ("state", "reason", "says"),
    [
        (SignalState(False, False, None, {}, None, {}), Reason.LANE_CLOSED, "not running"),
        (SignalState(True, True, None, {}, None, {}), Reason.LANE_CLOSED, "stopping"),
        (SignalState(True, False, "officer 9", {}, None, {}), Reason.LANE_CLOSED, "officer 9"),
        (SignalState(True, False, None, {"storage": "disk full"}, None, {}), Reason.DEVICE_FAULT, "storage"),
        (SignalState(True, False, None, {}, "inspect", {}), Reason.OFFICER_HOLD, "inspect"),
        (SignalState(True, False, None, {}, None, {"p1": "x-ray"}), Reason.OFFICER_HOLD, "x-ray"),
    ],
)
def test_each_refusal_names_its_reason(state: SignalState, reason: Reason, says: str) -> None:
    got = refusal(state, "p1")
    assert got is not None and got.reason is reason and says in got.detail


def test_an_officer_may_release_a_passage_the_lane_may_not() -> None:
    blocked = SignalState(True, False, None, {}, None, {"p1": "x-ray"})
    assert refusal(blocked, "p1", by="officer:o-1") is None
    assert refusal(blocked, "p2") is None


def test_closed_outranks_a_fault_and_a_fault_outranks_a_hold() -> None:
    everything = SignalState(True, False, "closed", {"gpio": "x"}, "hold", {"p1": "y"})
    assert refusal(everything, "p1").reason is Reason.LANE_CLOSED  # type: ignore[union-attr]
    no_close = SignalState(True, False, None, {"gpio": "x"}, "hold", {})
    assert refusal(no_close).reason is Reason.DEVICE_FAULT  # type: ignore[union-attr]
