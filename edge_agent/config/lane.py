"""Lane geometry and decision policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge_agent.config.base import Model


class GeometryConfig(Model):
    """Where things are along the lane, in metres from the entry loop, and the allowed speeds."""

    exit_loop_m: float = Field(45.0, gt=0, le=500, description="Exit loop (stop line at the signal).")
    rfid_antenna_m: float = Field(12.0, ge=0, le=500, description="RFID antenna gantry.")
    wim_m: float = Field(8.0, ge=0, le=500, description="WIM scale.")
    plate_camera_m: float = Field(4.0, ge=0, le=500, description="Point the front plate camera looks at.")
    container_camera_m: float = Field(10.0, ge=0, le=500, description="Point the container camera looks at.")
    read_range_m: float = Field(
        3.0, gt=0, le=20, description="Half-width of each sensor's field along the lane (at most 20 m)."
    )
    min_speed_kmh: float = Field(3.0, gt=0, le=50, description="Slower than this (average) refers.")
    max_speed_kmh: float = Field(
        20.0,
        gt=0,
        le=50,
        description="Faster than this refers. At most 50 km/h: the corridor is a low-speed lane, "
        "and low-speed WIM loses its accuracy above walking pace.",
    )
    min_gap_m: float = Field(
        6.0, ge=0, le=100, description="Bumper-to-bumper gap below which the follower refers."
    )
    max_dwell_s: float = Field(120.0, gt=0, le=3600, description="A passage open longer than this refers.")
    wim_wait_s: float = Field(
        3.0, ge=0, le=60, description="How long after the tail crosses the scale to wait for WIM."
    )

    @model_validator(mode="after")
    def _check(self) -> GeometryConfig:
        for name in ("rfid_antenna_m", "wim_m", "plate_camera_m", "container_camera_m"):
            if getattr(self, name) >= self.exit_loop_m:
                raise ValueError(f"{name} must lie before exit_loop_m ({self.exit_loop_m} m)")
        if self.min_speed_kmh >= self.max_speed_kmh:
            raise ValueError("min_speed_kmh must be below max_speed_kmh")
        return self


class PolicyConfig(Model):
    """What a release needs."""

    conveyance: Literal["both", "transponder", "plate", "either"] = Field(
        "both", description="Which conveyance identifiers must match the pre-arrival record."
    )
    require_driver: bool = Field(True, description="The driver's FAST card must be read and match.")
    require_seal: bool = Field(True, description="Loaded containers need a matching e-seal.")
    weight_tolerance_pct: float = Field(5.0, ge=0, le=50, description="Allowed WIM vs declared gross (%).")
    weight_tolerance_kg: float = Field(
        500.0,
        ge=0,
        le=5000,
        description="Floor of the tolerance band (kg); at most 5 t, beyond which a loaded box would pass "
        "for an empty one.",
    )
    accepted_programs: tuple[str, ...] = Field(
        ("FAST", "PIP", "CTPAT"),
        description="Trusted-trader programmes accepted (own and mutual recognition).",
    )
    min_plate_confidence: float = Field(0.6, ge=0, le=1, description="Plate reads below this are ignored.")
    min_container_confidence: float = Field(
        0.6, ge=0, le=1, description="Container reads below this are ignored."
    )
