"""Logging: levels per component and the rate limit on repeated messages (``[logging]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from edge_agent.config.base import Model

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_COMPONENT = r"^[a-z_][a-z0-9_]{0,39}(\.[a-z_][a-z0-9_]{0,39}){0,5}$"


class LogsConfig(Model):
    """How the agent logs to the journal. See ``edge_agent/logs.py``."""

    levels: dict[str, Level] = Field(
        default_factory=dict,
        description="Level per component: a module of the agent by its short name ('rfid', 'uplink', "
        "'uplink.link'), or a full logger name under 'drivers.' or 'pymodbus'. The rest log at "
        "--log-level. DEBUG lines may carry personal identifiers: never leave DEBUG on in service.",
    )
    rate_burst: int = Field(
        10, ge=1, le=1000, description="Lines of one kind (same component and message) per window."
    )
    rate_total: int = Field(
        300, ge=10, le=100_000, description="Lines of every kind together per window (the journal's bound)."
    )
    rate_window_s: float = Field(
        60.0, ge=1, le=3600, description="The window; the next line after it says how many were suppressed."
    )

    @field_validator("levels")
    @classmethod
    def _components(cls, levels: dict[str, Level]) -> dict[str, Level]:
        import re

        bad = [name for name in levels if not re.match(_COMPONENT, name)]
        if bad:
            raise ValueError(f"component names must be dotted lower-case module names, not {bad}")
        if len(levels) > 64:
            raise ValueError("at most 64 components")
        return levels

    def logger_names(self) -> dict[str, Level]:
        """``levels`` by full logger name (``rfid`` -> ``edge_agent.rfid``)."""
        out: dict[str, Level] = {}
        for name, level in self.levels.items():
            full = (
                name
                if name.split(".")[0] in ("edge_agent", "drivers", "hw_sim", "pymodbus")
                else f"edge_agent.{name}"
            )
            out[full] = level
        return out
