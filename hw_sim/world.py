"""What the scenario player drives: the physical world as each simulated device perceives it.

Every simulated device (in-process or wire-level) implements one of these; the player never knows
which. All calls are cheap and non-blocking; the device does its own I/O on the asyncio loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FieldTag:
    """A tag currently inside the RFID reader's field."""

    epc: str  # upper-case hex, 12 bytes for the lane's tags
    antenna: int  # 1-based
    rssi_dbm: float


class TagField(Protocol):
    """The RFID reader's view: which tags are in its field now."""

    def set_tags(self, tags: list[FieldTag]) -> None:
        """Replace the set of tags in the field (an empty list = nothing in range)."""
        ...


class LoopPanel(Protocol):
    """The loop detector card's view: presence per loop."""

    def set_presence(self, loop: str, present: bool) -> None:
        """Report a vehicle over (``True``) or off (``False``) the named loop."""
        ...


@dataclass(frozen=True, slots=True)
class AxleLoad:
    """One axle as the WIM scale measured it."""

    weight_kg: float
    spacing_m: float  # distance to the previous axle (0 for the first)


@dataclass(frozen=True, slots=True)
class VehicleWeighing:
    """What the WIM controller computes once a vehicle's last axle has crossed the scale."""

    speed_kmh: float
    axles: tuple[AxleLoad, ...]
    flags: int = 0  # controller quality/violation flags

    @property
    def gross_kg(self) -> float:
        """Sum of axle weights."""
        return sum(a.weight_kg for a in self.axles)


class WimScale(Protocol):
    """The WIM controller's view: vehicles it has weighed."""

    def record(self, weighing: VehicleWeighing) -> None:
        """A vehicle has just crossed the scale; make its record available to the agent."""
        ...

    def set_fault(self, fault: bool) -> None:
        """Put the controller into (or out of) a fault state."""
        ...


@dataclass(frozen=True, slots=True)
class Scene:
    """What a camera sees as a vehicle passes: the text painted on it, or nothing legible."""

    plate: str | None  # None = plate absent or illegible (dirt, glare)
    container: str | None  # ISO 6346 code on the container, None if none or illegible


class CameraRig(Protocol):
    """The cameras' view."""

    def show(self, camera: str, scene: Scene | None) -> None:
        """``scene`` is in front of ``camera`` (``None`` = empty road)."""
        ...
