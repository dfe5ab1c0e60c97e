"""Shared by the signal tests: a virtual lane clock and the lamp-history invariant checker."""

from __future__ import annotations

import asyncio
import heapq
from datetime import UTC, datetime, timedelta

from drivers.gpio.sim import PinChange
from edge_agent.config.signal import SignalConfig

RED_PIN, AMBER_PIN, GREEN_PIN = 17, 27, 22
NAMES = {RED_PIN: "red", AMBER_PIN: "amber", GREEN_PIN: "green"}
EPS = 1e-9


class VirtualClock:
    """Lane time that moves only when the test advances it; sleepers wake in deadline order."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def monotonic(self) -> float:
        return self.now

    def utcnow(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, self._seq, fut))
        self._seq += 1
        await fut

    @staticmethod
    async def settle() -> None:
        """Run every ready callback until the loop is quiescent (no timers exist in this world)."""
        loop = asyncio.get_running_loop()
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not getattr(loop, "_ready", True):  # CPython's ready queue; else run the full count
                return

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self.now = max(self.now, when)
            fut.set_result(None)
            await self.settle()
        self.now = target
        await self.settle()


def check_history(history: list[PinChange], cfg: SignalConfig) -> None:
    """The lamp-level invariants, over the whole recorded history."""
    lit: dict[int, bool] = {}
    last_off: float | None = None
    last_on: tuple[str, float] | None = None
    red_on_at: float | None = None
    for change in history:
        if change.pin not in NAMES:
            continue
        name = NAMES[change.pin]
        was = lit.get(change.pin, False)
        on = change.value != cfg.pins.active_low
        lit[change.pin] = on
        assert sum(lit.values()) <= 1, f"two lamps lit at {change.at}: {lit}"
        if on and not was:
            if last_off is not None:
                assert change.at - last_off >= cfg.dark_ms / 1000 - EPS, f"no dark gap before {name}"
            if last_on is not None:
                prev = last_on[0]
                if prev == "green":
                    assert name == ("amber" if cfg.amber_s > 0 else "red"), f"green went to {name}"
                if prev == "amber":
                    assert name == "red", f"amber went to {name}"
            if name == "green" and red_on_at is not None:
                assert change.at - red_on_at >= cfg.min_red_s - EPS, "red too short before green"
            if name == "red":
                red_on_at = change.at
            last_on = (name, change.at)
        elif was and not on:
            last_off = change.at
            if name == "amber":
                assert last_on is not None
                assert change.at - last_on[1] >= cfg.amber_s - EPS, "amber shorter than amber_s"
