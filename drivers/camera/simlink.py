"""The ``sim`` camera in another process: frames from ``edge-agent sim`` over a Unix socket.

When the agent runs as its own process against the simulated hardware (``edge-agent sim``), a camera
configured ``backend = "sim"`` with a ``socket`` connects here. The wire format is one frame per
message: a JSON header line ``{"age_s": float, "label": {...} | null, "shape": [h, w, 3] | null}``
then, when ``shape`` is given, ``h * w * 3`` bytes of B, G, R pixels. Everything is checked before
use (header size, fields, shape bounds, pixel count) and a bad message ends the stream with
:class:`~drivers.camera.base.CameraError` naming what was wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivers.camera.base import MAX_PIXELS, CameraError, Frame, frame_problem

Label = dict[str, str | None]


@dataclass(frozen=True, slots=True)
class SceneFrame(Frame):
    """A simulator's frame: pixels (or none) and ``label``, what the simulated scene shows.

    Only the simulator makes these (in the demo's process, or over this link); the lane's own cameras
    make plain :class:`Frame` objects. ``label`` is what the ``sim`` recogniser reads instead of pixels.
    """

    label: Label | None = None


MAX_HEADER = 4096
MAX_AGE_S = 60.0


def encode_frame(age_s: float, label: dict[str, str | None] | None, image: Any) -> bytes:
    """One message of the wire format (the simulator's side)."""
    shape = None if image is None else [int(image.shape[0]), int(image.shape[1]), 3]
    header = json.dumps({"age_s": round(max(0.0, age_s), 6), "label": label, "shape": shape}).encode()
    body = b"" if image is None else np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return header + b"\n" + body


def _label(value: Any) -> dict[str, str | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 8:
        raise CameraError("frame label must be a small object")
    out: dict[str, str | None] = {}
    for k, v in value.items():
        if not isinstance(k, str) or len(k) > 32 or not (v is None or (isinstance(v, str) and len(v) <= 64)):
            raise CameraError("frame label must map short names to short strings or null")
        out[k] = v
    return out


def parse_header(line: bytes) -> tuple[float, dict[str, str | None] | None, tuple[int, int] | None]:
    """``(age_s, label, (h, w) or None)`` from a header line; :class:`CameraError` if it is bad."""
    try:
        head = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CameraError("frame header is not JSON") from None
    if not isinstance(head, dict) or set(head) != {"age_s", "label", "shape"}:
        raise CameraError("frame header must have exactly age_s, label and shape")
    age = head["age_s"]
    if not isinstance(age, int | float) or not math.isfinite(age) or not 0 <= age <= MAX_AGE_S:
        raise CameraError(f"frame age must be 0-{MAX_AGE_S:g} s")
    shape = head["shape"]
    size: tuple[int, int] | None = None
    if shape is not None:
        ok = isinstance(shape, list) and len(shape) == 3 and all(isinstance(x, int) for x in shape)
        if (
            not ok
            or shape[2] != 3
            or not (shape[0] >= 16 and shape[1] >= 16)
            or shape[0] * shape[1] > MAX_PIXELS
        ):
            raise CameraError(
                f"frame shape {shape!r} is not (h >= 16, w >= 16, 3) within {MAX_PIXELS} pixels"
            )
        size = (shape[0], shape[1])
    return float(age), _label(head["label"]), size


class SimLinkSource:
    """Frames from a simulator process (``edge-agent sim``) on a Unix socket."""

    def __init__(
        self, camera: str, *, clock: Callable[[], float], socket: Path, connect_timeout_s: float = 5.0
    ):
        self.camera = camera
        self.socket = Path(socket)
        self._clock = clock
        self._timeout = connect_timeout_s
        self._writer: asyncio.StreamWriter | None = None

    async def frames(self) -> AsyncIterator[SceneFrame]:
        """Yield frames as the simulator sends them; :class:`CameraError` when the link is lost."""
        try:
            reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.socket), limit=MAX_HEADER), self._timeout
            )
        except (OSError, TimeoutError) as exc:
            raise CameraError(
                f"camera {self.camera}: no simulator at {self.socket}: {exc or 'timed out'}"
            ) from None
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    raise CameraError(f"camera {self.camera}: frame header over {MAX_HEADER} bytes") from None
                if not line:
                    raise CameraError(f"camera {self.camera}: the simulator at {self.socket} closed the link")
                age, label, size = parse_header(line)
                image = None
                if size is not None:
                    raw = await reader.readexactly(size[0] * size[1] * 3)
                    image = np.frombuffer(raw, dtype=np.uint8).reshape(size[0], size[1], 3)
                    problem = frame_problem(image)
                    if problem is not None:
                        raise CameraError(f"camera {self.camera}: {problem}")
                yield SceneFrame(self.camera, self._clock() - age, image, label)
        except asyncio.IncompleteReadError:
            raise CameraError(f"camera {self.camera}: the simulator closed the link mid-frame") from None
        finally:
            self.close()

    def close(self) -> None:
        """Drop the link; safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(RuntimeError):
                writer.close()
