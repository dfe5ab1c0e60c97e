"""Lamp read-back: each lamp is checked against what the signal commands.

Cabinets wire a contact per lamp (current sensing or an auxiliary relay contact) back to an input.
Every ``poll_ms`` each settled lamp (``settle_ms`` after its last change) is compared with what is
commanded; a mismatch -- a dead lamp, a welded relay -- closes the lane and raises
``lamp_mismatch:<lamp>``, which clears once the lamp agrees again (the lane stays closed until an
officer opens it). A read error is the ``gpio`` fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from drivers.gpio.base import DigitalIO
from edge_agent.clock import Clock
from edge_agent.config.signal import ReadbackConfig
from edge_agent.domain import SignalAspect


class LampOwner(Protocol):
    """What the monitor needs from the signal."""

    @property
    def faults(self) -> set[str]:
        """Active faults."""
        ...

    def fault(self, name: str, detail: str) -> None:
        """Raise a fault (red)."""
        ...

    def clear_fault(self, name: str) -> None:
        """End a fault."""
        ...

    def set_closed(self, closed: bool, reason: str) -> None:
        """Close the lane."""
        ...


class LampReadback:
    """Compares commanded lamps with their read-back inputs (``check`` once, or ``run`` forever)."""

    def __init__(
        self,
        cfg: ReadbackConfig,
        io: DigitalIO,
        clock: Clock,
        owner: LampOwner,
        *,
        commanded: Callable[[SignalAspect], bool],
        changed_at: Callable[[SignalAspect], float],
        count: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self._io = io
        self._clock = clock
        self._owner = owner
        self._commanded = commanded
        self._changed_at = changed_at
        self._count = count

    def setup(self, pull_up: bool) -> None:
        """Configure the read-back inputs."""
        for pin in (self.cfg.red, self.cfg.amber, self.cfg.green):
            if pin is not None:
                self._io.setup_input(pin, pull_up=pull_up)

    def check(self) -> None:
        """Compare each settled lamp's read-back with what is commanded."""
        rb, owner = self.cfg, self._owner
        now = self._clock.monotonic()
        lamps = ((SignalAspect.RED, rb.red), (SignalAspect.AMBER, rb.amber), (SignalAspect.GREEN, rb.green))
        for lamp, pin in lamps:
            if pin is None or now - self._changed_at(lamp) < rb.settle_ms / 1000.0:
                continue
            try:
                lit = self._io.read(pin) != rb.active_low
            except Exception as exc:
                self._count("gpio_errors")
                if "gpio" not in owner.faults:
                    owner.fault("gpio", f"reading pin {pin}: {exc}")
                continue
            name, expected = f"lamp_mismatch:{lamp.value}", self._commanded(lamp)
            if lit != expected:
                if name not in owner.faults:
                    detail = (
                        f"{lamp.value} lamp commanded {'on' if expected else 'off'} "
                        f"but reads {'lit' if lit else 'dark'} (pin {pin})"
                    )
                    owner.set_closed(True, f"lamp fault: {detail}")
                    owner.fault(name, detail)
            elif name in owner.faults:
                owner.clear_fault(name)

    async def run(self) -> None:
        """Check every ``poll_ms`` until cancelled."""
        while True:
            await self._clock.sleep(self.cfg.poll_ms / 1000.0)
            self.check()
