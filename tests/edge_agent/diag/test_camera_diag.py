"""``edge-agent diag camera --snapshot``: a frame from a configured camera (a real folder of images the
``files`` backend replays), saved, and read by the shipped plate model; no camera, no frame, exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from hw_sim.render import render_frame
from hw_sim.world import Scene
from tests.lanes import minimal_lane_toml


def lane_toml(tmp_path: Path, folder: Path) -> Path:
    camera = f'''[devices.cameras.front]
backend = "files"
role = "plate"
path = "{folder}"
fps = 2.0
[recognition]
backend = "tflite"
'''
    return minimal_lane_toml(tmp_path, camera)


def diag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "diag", "camera", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_a_snapshot_is_saved_and_read(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    frame = render_frame(Scene("KRT4821", None), "plate", seed=9_300_001, size=(640, 360))
    Image.fromarray(frame[:, :, ::-1]).save(folder / "f1.png")
    snap = tmp_path / "snap.jpg"
    done = diag("--config", str(lane_toml(tmp_path, folder)), "--camera", "front", "--snapshot", str(snap))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tried: open camera front (files" in done.stdout and "a 640x360 frame" in done.stdout
    assert Image.open(snap).size == (640, 360)
    assert "tried: read the plate with" in done.stdout
    assert "answered: KRT4821" in done.stdout or "no plate read" in done.stdout


def test_no_frame_is_exit_1_with_what_to_check(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    done = diag(
        "--config", str(lane_toml(tmp_path, missing)), "--snapshot", str(tmp_path / "s.png"), "--timeout", "3"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "check next" in done.stdout and not (tmp_path / "s.png").exists()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    cfg = lane_toml(tmp_path, tmp_path)
    assert (
        diag("--config", str(cfg), "--camera", "side", "--snapshot", str(tmp_path / "s.png")).returncode == 2
    )
    assert diag("--config", str(cfg), "--snapshot", str(tmp_path / "s.gif")).returncode == 2
