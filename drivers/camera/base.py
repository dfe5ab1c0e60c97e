"""What every camera backend delivers: timestamped frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    ``image`` is an (h, w, 3) uint8 array in B, G, R memory order (picamera2's ``RGB888``), or ``None``
    for a simulated frame that carries only its ``label`` (what the simulated scene shows).
    """

    camera: str
    captured: float  # lane monotonic seconds
    image: Any = None
    label: dict[str, str | None] | None = None


class FrameSource(Protocol):
    """A camera: an async stream of frames."""

    def frames(self) -> AsyncIterator[Frame]:
        """Yield frames until cancelled."""
        ...

    def close(self) -> None:
        """Release the camera; safe to call twice."""
        ...
