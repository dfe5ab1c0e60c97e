"""The RFID reader and what its tags mean."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from edge_agent.config.base import Model

_PATTERN = re.compile(r"^[0-9A-F?]{1,64}$")


class TagPatterns(Model):
    """EPC patterns (upper-case hex from the EPC's start, ``?`` = any nibble) per tag kind."""

    fast_card: tuple[str, ...] = Field(("35",), description="Driver FAST cards.")
    conveyance: tuple[str, ...] = Field(("30",), description="Windshield conveyance transponders.")
    eseal: tuple[str, ...] = Field(("3A",), description="Container e-seals.")

    @field_validator("fast_card", "conveyance", "eseal")
    @classmethod
    def _hex(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            if not _PATTERN.match(p):
                raise ValueError(f"{p!r} is not an EPC pattern of hex digits and '?'")
        return patterns


class CrossReadRule(Model):
    """Reads that must come from the adjacent lane are dropped."""

    min_rssi_dbm: float = Field(-70.0, description="Weaker reads are cross reads.")
    adjacent_antennas: tuple[int, ...] = Field((), description="Antennas that face the adjacent lane.")


class SimRfidConfig(Model):
    """In-process simulated reader (unit tests and quick demos)."""

    backend: Literal["sim"] = "sim"
    tags: TagPatterns = TagPatterns()
    cross_read: CrossReadRule = CrossReadRule()


RfidConfig = SimRfidConfig
