"""The RFID reader (backend by ``backend``) and what its tags mean."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge_agent.config.base import Model

_PATTERN = re.compile(r"^[0-9A-F?]{1,64}$")
EpcBits = tuple[Annotated[int, Field(ge=16, le=496, multiple_of=16)], ...]
"""EPC lengths in bits: whole 16-bit words, at most the 496 a Gen2 PC word can announce."""


class TagLengths(Model):
    """EPC lengths (bits) each kind of tag may have; a read of another length is bad data.

    The tags a lane deals with carry one EPC size each (EPC-96 is the common one); anything else is
    a foreign or forged tag, dropped and counted before it can be joined to a passage.
    """

    fast_card: EpcBits = Field(default=(96,), min_length=1, max_length=31, description="Driver FAST cards.")
    conveyance: EpcBits = Field(
        default=(96,), min_length=1, max_length=31, description="Conveyance transponders."
    )
    eseal: EpcBits = Field(default=(96,), min_length=1, max_length=31, description="Container e-seals.")
    unknown: EpcBits = Field(
        default=tuple(range(96, 497, 16)),
        min_length=1,
        max_length=31,
        description="Tags of no configured kind (counted, never used): the EPC Tag Data Standard's "
        "96 to 496 bits.",
    )


class TagPatterns(Model):
    """EPC patterns (upper-case hex from the EPC's start, ``?`` = any nibble) per tag kind.

    A tag matching several kinds takes the kind of its longest (most specific) matching pattern.
    """

    fast_card: tuple[str, ...] = Field(default=("35",), description="Driver FAST cards.")
    conveyance: tuple[str, ...] = Field(default=("30",), description="Windshield conveyance transponders.")
    eseal: tuple[str, ...] = Field(default=("3A",), description="Container e-seals.")
    epc_bits: TagLengths = Field(
        default_factory=TagLengths, description="EPC lengths each kind may have (reads of others are bad)."
    )

    @field_validator("fast_card", "conveyance", "eseal")
    @classmethod
    def _hex(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            if not _PATTERN.match(p):
                raise ValueError(f"{p!r} is not an EPC pattern of upper-case hex digits and '?'")
        return patterns


class CrossReadRule(Model):
    """Reads that must come from the adjacent lane are dropped."""

    min_rssi_dbm: float = Field(default=-70.0, ge=-128, le=0, description="Weaker reads are cross reads.")
    adjacent_antennas: tuple[Annotated[int, Field(ge=1, le=64)], ...] = Field(
        default=(), description="Antennas that face the adjacent lane: their reads are cross reads."
    )


class _Common(Model):
    """Settings every serial reader backend shares."""

    port: str = Field(
        min_length=1,
        description="Serial port: /dev/serial/by-id/..., /dev/ttyUSB0, a pty path, socket://host:port or loop://.",
    )
    baud: int = Field(default=115200, description="Line speed (8N1).")
    backoff_initial_ms: int = Field(default=500, ge=10, le=60_000, description="First reconnect delay.")
    backoff_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="Reconnect delays double up to this."
    )
    tags: TagPatterns = TagPatterns()
    cross_read: CrossReadRule = CrossReadRule()

    @field_validator("baud")
    @classmethod
    def _baud(cls, baud: int) -> int:
        if baud not in (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600):
            raise ValueError(f"baud {baud} is not a standard rate (9600 ... 921600)")
        return baud


class R2000RfidConfig(_Common):
    """A reader speaking the R2000 ("0xA0") binary protocol."""

    backend: Literal["r2000"] = "r2000"
    address: int = Field(
        default=0xFF, ge=0, le=0xFF, description="Reader address; 255 = broadcast (any reader)."
    )
    antennas: tuple[Annotated[int, Field(ge=1, le=4)], ...] = Field(
        default=(1,), min_length=1, description="Antennas inventoried, in turn (1-4)."
    )
    rf_power_dbm: int | None = Field(
        default=30, ge=0, le=33, description="Output power set at connect; unset = leave as is."
    )
    inventory: Literal["real_time", "session"] = Field(
        default="real_time", description="0x89 real-time inventory, or 0x8B with session and target."
    )
    session: int = Field(default=1, ge=0, le=3, description="Gen2 session for 'session' inventory.")
    target: Literal["A", "B"] = Field(default="A", description="Gen2 inventoried flag targeted.")
    repeat: int = Field(default=1, ge=1, le=255, description="Inventory rounds per command.")
    cadence_ms: int = Field(
        default=200, ge=10, le=60_000, description="One inventory command this often (at most)."
    )
    reply_timeout_ms: int = Field(
        default=1000, ge=10, le=60_000, description="A reply must come within this."
    )
    silent_after: int = Field(
        default=2, ge=1, le=100, description="Consecutive timeouts that make the reader silent."
    )


class AsciiRfidConfig(_Common):
    """A reader sending one line ``EPC[,antenna,rssi]`` per read."""

    backend: Literal["ascii"] = "ascii"
    idle_timeout_ms: int | None = Field(
        default=None,
        ge=100,
        le=3_600_000,
        description="For readers that send heartbeats: nothing for this long = silent. None = never.",
    )
    default_antenna: int = Field(
        default=1, ge=1, le=64, description="Antenna assumed when a line gives none."
    )
    default_rssi_dbm: float = Field(
        default=-50.0, ge=-100, le=0, description="RSSI assumed when a line gives none."
    )
    antennas: tuple[Annotated[int, Field(ge=1, le=64)], ...] = Field(
        default=(1, 2, 3, 4),
        min_length=1,
        max_length=64,
        description="Antenna ports the reader has: a line naming another port is bad data.",
    )

    @model_validator(mode="after")
    def _default_port(self) -> AsciiRfidConfig:
        if self.default_antenna not in self.antennas:
            raise ValueError(f"default_antenna {self.default_antenna} is not one of antennas {self.antennas}")
        return self


RfidConfig = Annotated[R2000RfidConfig | AsciiRfidConfig, Field(discriminator="backend")]
