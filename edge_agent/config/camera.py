"""Cameras and on-device recognition."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge_agent.config.base import Model

MODEL_FILES = {"plate": "plate_ocr.tflite", "container": "container_reader.tflite"}
"""The shipped model files (``models/`` in the repository)."""

SHARE_DIR = Path("share") / "lane-edge-agent" / "models"
"""Where an installed (non-editable) package finds the models, under ``sys.prefix``."""


def default_model_dir() -> Path:
    """Where the shipped models are.

    ``models/`` of the source checkout (editable install, CI, demo) when it is there, else
    ``<sys.prefix>/share/lane-edge-agent/models`` (a wheel installed in a venv on the Pi).
    """
    checkout = Path(__file__).resolve().parents[2] / "models"
    if (checkout / MODEL_FILES["plate"]).is_file():
        return checkout
    return Path(sys.prefix) / SHARE_DIR


class _CaptureConfig(Model):
    """What every camera shares: its role, its rate, and when and how much it captures."""

    role: Literal["plate", "container"] = Field(description="What this camera is pointed at.")
    fps: float = Field(5.0, gt=0, le=60, description="Frames per second handed to recognition.")
    trigger: Literal["entry_loop", "continuous"] = Field(
        "entry_loop",
        description="Capture while the entry loop is occupied (and tail_s after), or all the time.",
    )
    tail_s: float = Field(
        2.0, ge=0, le=60, description="Keep capturing this long after the entry loop clears."
    )
    ring_frames: int = Field(
        8,
        ge=1,
        le=64,
        description="Frames waiting for recognition at most; older ones are skipped (counted).",
    )
    max_pixels: int = Field(
        4608 * 3496, ge=256, le=4608 * 3496, description="Frames larger than this are rejected (counted)."
    )


class SimCameraConfig(_CaptureConfig):
    """A simulated camera fed by the scenario player: in the demo's process, or over ``socket``."""

    backend: Literal["sim"] = "sim"
    socket: Path | None = Field(
        None,
        description="Unix socket of `edge-agent sim` serving this camera's frames (when the agent runs as "
        "its own process); unset: the demo hands the camera to the agent in-process.",
    )
    read_labels: bool = Field(
        False,
        description="Read what the simulated scene says instead of its pixels (the container camera, "
        "until a container model ships).",
    )


class Picamera2CameraConfig(_CaptureConfig):
    """A Raspberry Pi camera module through picamera2 (``python3-picamera2`` on Raspberry Pi OS)."""

    backend: Literal["picamera2"]
    index: int = Field(0, ge=0, le=7, description="Camera number as libcamera lists it.")
    width: int = Field(1280, ge=64, le=4608, description="Frame width in pixels.")
    height: int = Field(720, ge=48, le=3496, description="Frame height in pixels.")


class OpencvCameraConfig(_CaptureConfig):
    """A V4L2 device or an IP camera's RTSP stream through OpenCV (the ``camera`` extra)."""

    backend: Literal["opencv"]
    device: str = Field(
        min_length=1,
        max_length=1024,
        description="/dev/video0 (or its number), rtsp://host/stream, or a video file.",
    )
    width: int | None = Field(None, ge=64, le=4608, description="Frame width to ask a V4L2 device for.")
    height: int | None = Field(None, ge=48, le=3496, description="Frame height to ask a V4L2 device for.")


class FilesCameraConfig(_CaptureConfig):
    """Recorded traffic replayed as a camera: a folder of images, one image, or a video file."""

    backend: Literal["files"]
    path: Path = Field(description="A folder of images (name order), an image file, or a video file.")
    loop: bool = Field(False, description="Start again at the end.")


CameraConfig = Annotated[
    SimCameraConfig | Picamera2CameraConfig | OpencvCameraConfig | FilesCameraConfig,
    Field(discriminator="backend"),
]


class _RecognitionBudget(Model):
    """How long a decision may wait for recognition."""

    max_wait_ms: int = Field(
        300,
        ge=0,
        le=10_000,
        description="When the rest of a passage is ready, wait at most this long for pending reads.",
    )


class SimRecognitionConfig(_RecognitionBudget):
    """Simulated recognition: reads what the simulated scene shows (no model)."""

    backend: Literal["sim"] = "sim"


class RoiConfig(Model):
    """A region of interest as fractions of the frame: left, top, right, bottom."""

    x0: float = Field(ge=0.0, lt=1.0)
    y0: float = Field(ge=0.0, lt=1.0)
    x1: float = Field(gt=0.0, le=1.0)
    y1: float = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> RoiConfig:
        if self.x1 - self.x0 < 0.02 or self.y1 - self.y0 < 0.02:
            raise ValueError("needs x0 < x1 and y0 < y1 (at least 2% of the frame each way)")
        return self

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``."""
        return (self.x0, self.y0, self.x1, self.y1)


class TfliteRecognitionConfig(_RecognitionBudget):
    """Recognition by the shipped TFLite models, run by LiteRT (or tflite-runtime) on the CPU."""

    backend: Literal["tflite"]
    plate_model: Path = Field(
        default_factory=lambda: default_model_dir() / MODEL_FILES["plate"],
        description="Plate reader model (.tflite).",
    )
    container_model: Path = Field(
        default_factory=lambda: default_model_dir() / MODEL_FILES["container"],
        description="ISO 6346 container code reader model (.tflite); its localiser "
        "container_locator.tflite ships beside it.",
    )
    num_threads: int = Field(1, ge=1, le=8, description="Interpreter threads per model.")
    min_confidence: float = Field(
        0.5, gt=0.0, le=1.0, description="A read whose weakest character is less sure than this is dropped."
    )
    plate_roi: RoiConfig = Field(
        default_factory=lambda: RoiConfig(x0=0.30, y0=0.50, x1=0.70, y1=0.78),
        description="Where the plate camera sees the plate.",
    )
    container_roi: RoiConfig = Field(
        default_factory=lambda: RoiConfig(x0=0.50, y0=0.08, x1=0.90, y1=0.44),
        description="Where the container camera sees the painted code (the fixed-region reader only; "
        "the container reader finds the code with its localiser).",
    )


RecognitionConfig = Annotated[SimRecognitionConfig | TfliteRecognitionConfig, Field(discriminator="backend")]
