"""Camera config: one model per backend, unknown keys and out-of-range values named, built by backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image
from pydantic import TypeAdapter, ValidationError

from edge_agent.camera import LabelRecogniser, build_cameras
from edge_agent.clock import SystemClock
from edge_agent.config import validate_config
from edge_agent.config.camera import CameraConfig, FilesCameraConfig, OpencvCameraConfig
from edge_agent.domain import LoopEvent, PlateRead
from edge_agent.errors import ConfigError
from hw_sim.render import render_frame
from hw_sim.world import Scene
from tests.lanes import sim_config

CAMERA: TypeAdapter[object] = TypeAdapter(CameraConfig)


def test_each_backend_checks_its_own_keys() -> None:
    cam = CAMERA.validate_python({"backend": "opencv", "role": "plate", "device": "rtsp://10.0.0.5/stream1"})
    assert isinstance(cam, OpencvCameraConfig)
    assert (cam.trigger, cam.tail_s, cam.ring_frames, cam.fps) == ("entry_loop", 2.0, 8, 5.0)
    files = CAMERA.validate_python({"backend": "files", "role": "plate", "path": "/srv/replay", "loop": True})
    assert isinstance(files, FilesCameraConfig) and files.path == Path("/srv/replay")
    with pytest.raises(ValidationError, match="path"):
        CAMERA.validate_python({"backend": "opencv", "role": "plate", "device": "/dev/video0", "path": "/x"})
    with pytest.raises(ValidationError, match="ring_frames"):
        CAMERA.validate_python({"backend": "files", "role": "plate", "path": "/x", "ring_frames": 1000})
    with pytest.raises(ValidationError, match="device"):
        CAMERA.validate_python({"backend": "opencv", "role": "plate", "device": ""})
    with pytest.raises(ValidationError, match="tail_s"):
        CAMERA.validate_python({"backend": "files", "role": "plate", "path": "/x", "tail_s": float("nan")})


def test_recognition_budget_is_bounded() -> None:
    with pytest.raises(ConfigError, match="max_wait_ms"):
        validate_config(
            {"site_id": "S", "lane_id": "L", "recognition": {"backend": "sim", "max_wait_ms": -1}}, "<t>"
        )


def test_a_files_camera_built_from_config_reads_plates_with_the_shipped_model(tmp_path: Path) -> None:
    folder = tmp_path / "replay"
    folder.mkdir()
    frame = render_frame(Scene("KZT4821", None), "plate", seed=9_300_000, size=(640, 360))
    Image.fromarray(frame[:, :, ::-1]).save(folder / "0001.png")
    base = sim_config(tmp_path).model_dump(mode="python")
    base["devices"]["cameras"] = {
        "front": {"backend": "files", "role": "plate", "path": str(folder), "fps": 20.0, "loop": True}
    }
    base["recognition"] = {"backend": "tflite"}
    cfg = validate_config(base, "<t>")
    closers: list[object] = []
    (cam,) = build_cameras(cfg, SystemClock(), frame_sources={}, recognisers={}, on_close=closers.append)

    async def run() -> list[object]:
        events: list[object] = []
        task = asyncio.create_task(cam.run(events.append))
        cam.observe(LoopEvent("entry", True, SystemClock().monotonic()))
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return events

    try:
        events = asyncio.run(run())
    finally:
        for close in closers:
            close()  # type: ignore[operator]
    assert any(isinstance(e, PlateRead) and e.text == "KZT4821" for e in events)


def test_a_sim_camera_without_the_simulator_names_the_key(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    with pytest.raises(ConfigError, match=r"devices\.cameras\.front\.backend: 'sim' needs the simulator"):
        build_cameras(
            cfg,
            SystemClock(),
            frame_sources={},
            recognisers={"container": LabelRecogniser()},
            on_close=lambda f: None,
        )
