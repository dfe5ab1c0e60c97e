"""The lane signal and its outputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_agent.config.base import Model


class SimGpioConfig(Model):
    """In-process simulated pins."""

    backend: Literal["sim"] = "sim"


GpioConfig = SimGpioConfig


class SignalPins(Model):
    """BCM pins driving the lamp relays."""

    red: int = Field(17, ge=0, le=27)
    amber: int = Field(27, ge=0, le=27)
    green: int = Field(22, ge=0, le=27)


class SignalConfig(Model):
    """Lamp outputs and timing."""

    gpio: GpioConfig = SimGpioConfig()
    pins: SignalPins = SignalPins()
    amber_s: float = Field(3.0, ge=0, le=30, description="Minimum amber before red.")
    dark_ms: int = Field(20, ge=0, le=1000, description="Break-before-make gap between aspects.")
