"""OverrideHandler: each action, refusals within the signal's rules, audit records, bad bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from drivers.gpio.sim import SimGpio
from edge_agent.auth import Principal
from edge_agent.clock import SystemClock
from edge_agent.config.signal import SignalConfig
from edge_agent.domain import SignalAspect
from edge_agent.errors import CommandRejected
from edge_agent.override import OverrideHandler
from edge_agent.signal import TrafficSignal

pytestmark = pytest.mark.timeout(30)
OFFICER = Principal(
    "officer-1234", "officer", "officer-7", "cmd-1", "signal.override", "2026-11-28T12:00:00Z"
)
FAST = SignalConfig(amber_s=0.05, dark_ms=1, min_red_s=0.0)
OPEN = {"p1", "p2", "p3"}  # the passages in the lane in these scenarios

Scenario = Callable[[OverrideHandler, TrafficSignal], Awaitable[None]]


def run(scenario: Scenario) -> list[dict[str, Any]]:
    audits: list[dict[str, Any]] = []

    async def main() -> None:
        async with TrafficSignal(FAST, SimGpio(), SystemClock()) as signal:
            await scenario(OverrideHandler(signal, is_open=OPEN.__contains__, on_audit=audits.append), signal)

    asyncio.run(main())
    return audits


def aspect(sig: TrafficSignal) -> SignalAspect:
    return sig.aspect  # a call, so type checkers do not narrow it between steps


async def settle() -> None:
    await asyncio.sleep(0.15)


def test_release_a_referred_passage_shows_green_for_it() -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        res = await h.handle({"action": "release", "passage_id": "p1", "reason": "papers checked"}, OFFICER)
        assert res["applied"] is True
        await settle()
        assert aspect(sig) is SignalAspect.GREEN
        assert sig.granted == "p1"

    audits = run(scenario)
    assert len(audits) == 1
    a = audits[0]
    assert a["who"] == {"id": "officer-1234", "role": "officer", "key_id": "officer-7"}
    assert a["command_id"] == "cmd-1"
    assert a["action"] == "release"
    assert a["passage_id"] == "p1"
    assert a["outcome"] == "applied"
    assert a["reason"] == "papers checked"
    assert a["at"].endswith("+00:00")


def test_hold_the_lane_then_release_it() -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        assert sig.grant("p1")
        await settle()
        assert aspect(sig) is SignalAspect.GREEN
        res = await h.handle({"action": "hold", "reason": "suspicious load"}, OFFICER)
        assert res["applied"]
        assert sig.held
        await settle()
        assert aspect(sig) is SignalAspect.RED  # through amber
        assert not sig.grant("p2")
        res = await h.handle({"action": "release", "reason": "all clear"}, OFFICER)
        assert res["detail"] == "lane hold lifted"
        assert sig.grant("p2")

    assert [a["outcome"] for a in run(scenario)] == ["applied", "applied"]


def test_hold_one_passage_keeps_the_lane_from_releasing_it() -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        await h.handle({"action": "hold", "passage_id": "p1", "reason": "x-ray"}, OFFICER)
        assert not sig.grant("p1")
        assert sig.grant("p2")

    run(scenario)


def test_close_and_open_the_lane_and_release_is_refused_while_closed_or_faulted() -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        await h.handle({"action": "close", "reason": "works"}, OFFICER)
        assert sig.closed
        res = await h.handle({"action": "release", "passage_id": "p1", "reason": "go"}, OFFICER)
        assert res["applied"] is False
        assert "closed" in res["detail"]
        sig.fault("loop_lag", "late")
        res = await h.handle({"action": "open", "reason": "works done"}, OFFICER)
        assert res["applied"]
        assert "red until faults clear: loop_lag" in res["detail"]
        res = await h.handle({"action": "release", "passage_id": "p1", "reason": "go"}, OFFICER)
        assert res["applied"] is False
        await settle()
        assert aspect(sig) is SignalAspect.RED

    audits = run(scenario)
    assert [a["outcome"] for a in audits] == ["applied", "refused", "applied", "refused"]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode", "reason": "x"},
        {"action": "hold"},
        {"action": "hold", "reason": "   "},
        {"action": "hold", "reason": "x" * 501},
        {"action": "close", "passage_id": "p1", "reason": "x"},
        {"action": "release", "passage_id": 5, "reason": "x"},
        {"action": "hold", "reason": "x", "colour": "green"},
    ],
)
def test_malformed_bodies_are_rejected_and_change_nothing(body: dict[str, Any]) -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        before = sig.status()
        with pytest.raises(CommandRejected) as err:
            await h.handle(body, OFFICER)
        assert err.value.reason == "malformed"
        assert sig.status() == before

    audits = run(scenario)
    assert [a["outcome"] for a in audits] == ["rejected"]


def test_no_principal_no_override() -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        with pytest.raises(CommandRejected) as err:
            await h.handle({"action": "open", "reason": "x"}, None)
        assert err.value.reason == "unauthorised"

    assert run(scenario) == []


def test_release_of_a_passage_not_in_the_lane_is_refused() -> None:
    async def scenario(h: OverrideHandler, sig: TrafficSignal) -> None:
        res = await h.handle({"action": "release", "passage_id": "ghost-1", "reason": "x"}, OFFICER)
        assert res["applied"] is False
        assert "not open in this lane" in res["detail"]
        await settle()
        assert aspect(sig) is SignalAspect.RED
        assert sig.granted is None

    audits = run(scenario)
    assert audits[0]["outcome"] == "refused"
