"""Device health as reported by every component and published upstream."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class DeviceState(StrEnum):
    """Coarse health of one device."""

    UP = "up"
    DEGRADED = "degraded"  # answering, but with errors
    DOWN = "down"
    STARTING = "starting"


@dataclass(slots=True)
class DeviceHealth:
    """A device's state, last error and counters (timeouts, checksum errors, reconnects...)."""

    name: str
    kind: str  # "rfid", "wim", "loops", "camera", "signal", ...
    state: DeviceState = DeviceState.STARTING
    detail: str = ""
    last_ok_mono: float | None = None
    counters: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view for health messages and the CLI."""
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "detail": self.detail,
            "counters": dict(sorted(self.counters.items())),
        }
