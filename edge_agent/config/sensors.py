"""Loop detectors and the weigh-in-motion controller."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_agent.config.base import Model


class SimLoopsConfig(Model):
    """In-process simulated loop card."""

    backend: Literal["sim"] = "sim"
    entry: str = Field("entry", description="Name of the entry loop.")
    exit: str = Field("exit", description="Name of the exit loop (stop line).")
    stuck_after_s: float = Field(90.0, gt=0, description="A loop occupied longer than this is stuck.")


class SimWimConfig(Model):
    """In-process simulated WIM controller."""

    backend: Literal["sim"] = "sim"


LoopsConfig = SimLoopsConfig
WimConfig = SimWimConfig
