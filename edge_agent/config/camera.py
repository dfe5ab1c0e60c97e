"""Cameras and on-device recognition."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_agent.config.base import Model


class SimCameraConfig(Model):
    """A simulated camera fed by the scenario player."""

    backend: Literal["sim"] = "sim"
    role: Literal["plate", "container"] = Field(description="What this camera is pointed at.")
    fps: float = Field(5.0, gt=0, le=60, description="Frames per second while a vehicle is in view.")


CameraConfig = SimCameraConfig


class SimRecognitionConfig(Model):
    """Simulated recognition: reads what the simulated scene shows (no model)."""

    backend: Literal["sim"] = "sim"


RecognitionConfig = SimRecognitionConfig
