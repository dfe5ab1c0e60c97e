"""What may be lit now, and why not: the signal's permission as a pure function.

The one judge of whether green may be given (STYLE: no second place deciding it). The sequencer
(:class:`edge_agent.signal.TrafficSignal`) asks it before every green, and the lane asks it, through
the signal, before it commits a release, so what is recorded is what the truck sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edge_agent.config.signal import WatchdogConfig
from edge_agent.domain import Reason


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why green may not be given now: the referral reason the lane records, and a line for people."""

    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class SignalState:
    """Everything the permission depends on, as the sequencer holds it now."""

    running: bool
    stopping: bool
    closed_reason: str | None
    faults: Mapping[str, str]
    hold_reason: str | None
    blocked: Mapping[str, str]  # passage id -> officer's reason


def refusal(state: SignalState, passage_id: str | None = None, by: str = "lane") -> Refusal | None:
    """Why green may not be given now (for ``passage_id``, granted ``by``), or None if it may."""
    if state.stopping or not state.running:
        return Refusal(Reason.LANE_CLOSED, "signal stopping" if state.stopping else "signal not running")
    if state.closed_reason is not None:
        return Refusal(Reason.LANE_CLOSED, f"lane closed ({state.closed_reason})")
    if state.faults:
        return Refusal(Reason.DEVICE_FAULT, "faults active: " + ", ".join(sorted(state.faults)))
    if state.hold_reason is not None:
        return Refusal(Reason.OFFICER_HOLD, f"officer hold ({state.hold_reason})")
    if passage_id is not None and by == "lane" and passage_id in state.blocked:
        return Refusal(Reason.OFFICER_HOLD, f"passage held by officer ({state.blocked[passage_id]})")
    return None


def fail_safe_window_s(cfg: WatchdogConfig) -> float:
    """How long the loop may stall before the external fail-safe may have forced red behind our back.

    Two heartbeat periods without a toggle (the relay board's timeout must be at least three, see
    :mod:`edge_agent.watchdog`), and never less than the loop-lag fault threshold.
    """
    return max(2 * cfg.heartbeat_ms, cfg.loop_lag_ms) / 1000.0
