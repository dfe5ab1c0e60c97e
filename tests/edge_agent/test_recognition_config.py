"""Config of the new camera and recognition backends: parsed, defaulted, and checked key by key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from edge_agent.config.camera import (
    SHARE_DIR,
    CameraConfig,
    Picamera2CameraConfig,
    RecognitionConfig,
    SimCameraConfig,
    SimRecognitionConfig,
    TfliteRecognitionConfig,
    default_model_dir,
)
from hw_sim.render import CONTAINER_ROI, PLATE_ROI

RECOGNITION: TypeAdapter[SimRecognitionConfig | TfliteRecognitionConfig] = TypeAdapter(RecognitionConfig)
CAMERA: TypeAdapter[Any] = TypeAdapter(CameraConfig)
REPO = Path(__file__).resolve().parents[2]


def test_tflite_defaults_point_at_the_shipped_models() -> None:
    cfg = RECOGNITION.validate_python({"backend": "tflite"})
    assert isinstance(cfg, TfliteRecognitionConfig)
    assert cfg.plate_model == REPO / "models" / "plate_ocr.tflite"
    assert cfg.container_model == REPO / "models" / "container_reader.tflite"
    assert cfg.plate_model.is_file()  # the container model ships with issue #11
    assert (cfg.num_threads, cfg.min_confidence) == (1, 0.5)


def test_default_rois_match_where_the_simulated_cameras_see_the_text() -> None:
    cfg = TfliteRecognitionConfig(backend="tflite")
    assert cfg.plate_roi.as_tuple() == PLATE_ROI
    assert cfg.container_roi.as_tuple() == CONTAINER_ROI


def test_default_model_dir_is_the_checkout_here() -> None:
    assert default_model_dir() == REPO / "models"
    assert str(SHARE_DIR).endswith("lane-edge-agent/models")
    assert sys.prefix  # an installed package falls back to <prefix>/share/lane-edge-agent/models


def test_tflite_settings_from_a_toml_table() -> None:
    cfg = RECOGNITION.validate_python(
        {
            "backend": "tflite",
            "plate_model": "/opt/lane/models/plate.tflite",
            "num_threads": 2,
            "min_confidence": 0.7,
            "plate_roi": {"x0": 0.2, "y0": 0.4, "x1": 0.8, "y1": 0.9},
        }
    )
    assert isinstance(cfg, TfliteRecognitionConfig)
    assert cfg.plate_model == Path("/opt/lane/models/plate.tflite")
    assert cfg.plate_roi.as_tuple() == (0.2, 0.4, 0.8, 0.9)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"backend": "tflite", "plate_modle": "x"}, "plate_modle"),
        ({"backend": "tflite", "num_threads": 0}, "num_threads"),
        ({"backend": "tflite", "min_confidence": 1.5}, "min_confidence"),
        ({"backend": "tflite", "plate_roi": {"x0": 0.8, "y0": 0.1, "x1": 0.2, "y1": 0.5}}, "plate_roi"),
        ({"backend": "tflite", "container_roi": {"x0": 0.1, "y0": 0.1, "x1": 1.2, "y1": 0.5}}, "x1"),
        ({"backend": "onnx"}, "backend"),
    ],
)
def test_bad_recognition_settings_name_the_key(body: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as err:
        RECOGNITION.validate_python(body)
    assert where in str(err.value)


def test_sim_recognition_still_default() -> None:
    assert RECOGNITION.validate_python({"backend": "sim"}) == SimRecognitionConfig()


def test_picamera2_camera_config() -> None:
    cam = CAMERA.validate_python(
        {"backend": "picamera2", "role": "plate", "index": 1, "width": 1920, "height": 1080, "fps": 10}
    )
    assert isinstance(cam, Picamera2CameraConfig)
    assert (cam.index, cam.width, cam.height, cam.fps) == (1, 1920, 1080, 10.0)
    sim = CAMERA.validate_python({"backend": "sim", "role": "container"})
    assert isinstance(sim, SimCameraConfig)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"backend": "picamera2"}, "role"),
        ({"backend": "picamera2", "role": "plate", "fps": 0}, "fps"),
        ({"backend": "picamera2", "role": "plate", "width": 10}, "width"),
        ({"backend": "picamera2", "role": "plate", "exposure": 3}, "exposure"),
        ({"backend": "picamera2", "role": "rear"}, "role"),
    ],
)
def test_bad_camera_settings_name_the_key(body: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as err:
        CAMERA.validate_python(body)
    assert where in str(err.value)
