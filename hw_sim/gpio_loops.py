"""A loop detector card wired to GPIO inputs, played on :class:`drivers.gpio.sim.SimGpio` pins.

Implements :class:`hw_sim.world.LoopPanel`: presence on a loop drives its pin (low when
``active_low``, the usual contact-to-ground wiring with a pull-up). :meth:`GpioLoopPanel.bounce`
plays contact bounce, :meth:`GpioLoopPanel.stick` a detector channel stuck on "call".
A pin the agent has not set up yet keeps its idle level (the panel remembers the presence).
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.gpio.sim import SimGpio


class GpioLoopPanel:
    """Loop presence as GPIO input levels."""

    def __init__(
        self, gpio: SimGpio, pins: Mapping[str, int] | None = None, *, active_low: bool = True
    ) -> None:
        self.gpio = gpio
        self.pins = dict(pins or {"entry": 5, "exit": 6})
        self.active_low = active_low
        self.presence = dict.fromkeys(self.pins, False)
        self.stuck: set[str] = set()

    def _pin(self, loop: str) -> int:
        if loop not in self.pins:
            raise ValueError(f"no loop {loop!r} is wired (wired: {sorted(self.pins)})")
        return self.pins[loop]

    def _drive(self, loop: str, present: bool) -> None:
        try:
            self.gpio.drive(self._pin(loop), present != self.active_low)
        except ValueError:
            if loop not in self.pins:
                raise  # a loop that is not wired is the scenario's mistake

    def set_presence(self, loop: str, present: bool) -> None:
        """Report a vehicle over (or off) the named loop."""
        self._pin(loop)
        self.presence[loop] = present
        self._drive(loop, present or loop in self.stuck)

    def stick(self, loop: str, on: bool = True) -> None:
        """Make ``loop`` call presence whatever the world says (``on=False`` repairs it)."""
        self._pin(loop)
        if on:
            self.stuck.add(loop)
        else:
            self.stuck.discard(loop)
        self._drive(loop, self.presence[loop] or loop in self.stuck)

    def bounce(self, loop: str, present: bool, edges: int = 4) -> None:
        """Settle ``loop`` at ``present`` after ``edges`` quick flips (a bouncing relay contact)."""
        for k in range(edges):
            self._drive(loop, present if k % 2 == 0 else not present)
        self.set_presence(loop, present)
