"""The simlink camera backend: frames from a simulator process over a real Unix socket, checked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from drivers.camera.base import CameraError
from drivers.camera.simlink import SceneFrame, SimLinkSource, encode_frame, parse_header


def test_frames_cross_the_socket_with_pixels_labels_and_their_age(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 255, (36, 64, 3), dtype=np.uint8)

    async def main() -> list[SceneFrame]:
        async def serve(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(encode_frame(0.25, {"plate": "ABC123", "container": None}, image))
            w.write(encode_frame(0.0, {"plate": None, "container": None}, None))
            await w.drain()
            w.close()

        server = await asyncio.start_unix_server(serve, path=str(tmp_path / "cam.sock"))
        source = SimLinkSource("front", clock=lambda: 100.0, socket=tmp_path / "cam.sock")
        got: list[SceneFrame] = []

        async def drain() -> None:
            async for frame in source.frames():
                got.append(frame)

        with pytest.raises(CameraError, match="closed the link"):
            await drain()
        server.close()
        await server.wait_closed()
        return got

    first, second = asyncio.run(main())
    assert first.captured == pytest.approx(99.75) and first.label == {"plate": "ABC123", "container": None}
    assert np.array_equal(first.image, image)
    assert second.image is None


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (b"not json", "not JSON"),
        (json.dumps({"age_s": 0, "label": None}).encode(), "exactly"),
        (json.dumps({"age_s": -1, "label": None, "shape": None}).encode(), "age"),
        (json.dumps({"age_s": float("nan"), "label": None, "shape": None}).encode(), "age"),
        (json.dumps({"age_s": 0, "label": None, "shape": [100000, 100000, 3]}).encode(), "shape"),
        (json.dumps({"age_s": 0, "label": None, "shape": [8, 8, 3]}).encode(), "shape"),
        (json.dumps({"age_s": 0, "label": None, "shape": [64, 64, 4]}).encode(), "shape"),
        (json.dumps({"age_s": 0, "label": {"plate": "x" * 500}, "shape": None}).encode(), "label"),
        (json.dumps({"age_s": 0, "label": [1], "shape": None}).encode(), "label"),
    ],
)
def test_hostile_headers_are_refused_naming_what_was_wrong(header: bytes, says: str) -> None:
    with pytest.raises(CameraError, match=says):
        parse_header(header)


def test_no_simulator_is_a_camera_error_naming_the_socket(tmp_path: Path) -> None:
    async def main() -> None:
        source = SimLinkSource("front", clock=lambda: 0.0, socket=tmp_path / "absent.sock")
        async for _ in source.frames():
            pass

    with pytest.raises(CameraError, match=r"absent\.sock"):
        asyncio.run(main())
