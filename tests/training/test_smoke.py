"""``training/train.py --smoke``: the whole pipeline (synthesise, train, int8, evaluate) in under a minute.

Needs TensorFlow (the ``train`` extra), which the lane's venv does not have: the test runs the script
with ``$LANE_TRAIN_PYTHON`` (e.g. ``.train-venv/bin/python``) or, without it, the test's own
interpreter, and is skipped when that interpreter cannot import TensorFlow. CI (``.ci/run``) makes a
training venv of its own and points ``$LANE_TRAIN_PYTHON`` at it, so the smoke run is tested there; the
shipped models are never trained by CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = os.environ.get("LANE_TRAIN_PYTHON", sys.executable)


def _has_tensorflow() -> bool:
    probe = subprocess.run([PYTHON, "-c", "import tensorflow"], capture_output=True, timeout=60, check=False)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _has_tensorflow(), reason=f"TensorFlow not importable by {PYTHON} (train extra)"
)


@pytest.mark.timeout(300)
def test_smoke_run_trains_converts_and_beats_chance(tmp_path: Path) -> None:
    out = tmp_path / "plate_ocr.tflite"
    run = subprocess.run(
        [
            PYTHON,
            str(REPO / "training" / "train.py"),
            "--model",
            "plate",
            "--out",
            str(out),
            "--smoke",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    assert metrics["smoke"] is True
    assert 0 < out.stat().st_size < 2_000_000
    assert metrics["sha256"] and metrics["ms_per_inference_1_thread"] > 0
    loss = metrics["val_ctc_loss"]
    assert loss["model"] < 0.9 * loss["uniform"]  # better than a reader that knows nothing (chance)
    assert (tmp_path / "plate_ocr.md").is_file()  # the card is written from the metrics
