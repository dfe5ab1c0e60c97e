"""The lane signal: GPIO backend, lamp pins, timing, read-back, heartbeat and loop watchdog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge_agent.config.base import Floor, Model

AMBER_FLOOR = Floor(3.0, "traffic practice: the shortest yellow change interval is 3 s")
DARK_FLOOR = Floor(10, "a lamp relay needs up to 10 ms to release before the next one closes")
MIN_RED_FLOOR = Floor(1.0, "a red shorter than 1 s between two greens is a flicker, not a stop")


class SimGpioConfig(Model):
    """In-process simulated pins."""

    backend: Literal["sim"] = "sim"
    loopback: dict[int, int] = Field(
        default_factory=dict,
        description="Output pin -> input pin wired to it (simulated lamp read-back contacts).",
    )


class SimBoardGpioConfig(Model):
    """Pins of a ``hw_sim`` relay board in another process (demo and CI), over a unix socket."""

    backend: Literal["simboard"]
    socket: Path = Field(description="The relay board's unix socket.")
    connect_timeout_s: float = Field(2.0, gt=0, le=60)


class RpiGpioConfig(Model):
    """The Pi's header through RPi.GPIO (rpi-lgpio on a Pi 5), BCM numbering."""

    backend: Literal["rpigpio"]
    warnings: bool = Field(False, description="Let RPi.GPIO print its channel-in-use warnings.")


GpioConfig = Annotated[SimGpioConfig | SimBoardGpioConfig | RpiGpioConfig, Field(discriminator="backend")]


class SignalPins(Model):
    """BCM pins driving the lamp relays and the optional outputs."""

    red: int = Field(17, ge=0, le=27)
    amber: int = Field(27, ge=0, le=27)
    green: int = Field(22, ge=0, le=27)
    barrier: int | None = Field(
        None, ge=0, le=27, description="Stop bar/barrier: energised = clear to go (only while green is lit)."
    )
    closed_sign: int | None = Field(
        None, ge=0, le=27, description="'Lane closed' sign: energised while closed."
    )
    active_low: bool = Field(False, description="Relay board energises a relay on a low output.")


class ReadbackConfig(Model):
    """Inputs that report whether each lamp is really lit (current sensor or auxiliary contact)."""

    red: int | None = Field(None, ge=0, le=27)
    amber: int | None = Field(None, ge=0, le=27)
    green: int | None = Field(None, ge=0, le=27)
    active_low: bool = Field(True, description="Input reads low when the lamp is lit (contact to ground).")
    settle_ms: int = Field(
        200, ge=0, le=5000, description="Time a lamp gets after a change before it is checked."
    )
    poll_ms: int = Field(100, ge=10, le=5000, description="How often the read-back is compared.")


class WatchdogConfig(Model):
    """External fail-safe heartbeat, loop-lag fault and systemd watchdog."""

    heartbeat_pin: int | None = Field(
        None, ge=0, le=27, description="Output toggled while the lane loop is healthy."
    )
    heartbeat_ms: int = Field(250, ge=10, le=10_000, description="Time between heartbeat toggles.")
    loop_lag_ms: int = Field(500, ge=10, le=60_000, description="Loop lag past this faults the signal (red).")
    systemd: bool = Field(True, description="Speak sd_notify when $NOTIFY_SOCKET is set.")


class SignalConfig(Model):
    """Lamp outputs, timing and fail-safes."""

    gpio: GpioConfig = SimGpioConfig()
    pins: SignalPins = SignalPins()
    amber_s: Annotated[float, AMBER_FLOOR] = Field(
        3.0,
        ge=0,
        le=30,
        description="Minimum amber before red. Floor 3 s: the shortest yellow change interval of "
        "traffic-signal practice (MUTCD 4D.26 and most national rules), the time a driver at the "
        "line needs to stop or clear.",
    )
    dark_ms: Annotated[int, DARK_FLOOR] = Field(
        20,
        ge=0,
        le=1000,
        description="Break-before-make gap between aspects. Floor 10 ms: longer than a lamp relay's "
        "release time, so two lamps' contacts are never closed at once.",
    )
    min_red_s: Annotated[float, MIN_RED_FLOOR] = Field(
        1.0,
        ge=0,
        le=60,
        description="Red shown at least this long before the next green. Floor 1 s: a red a driver "
        "can see between two trucks' greens, never a flicker.",
    )
    max_green_s: float = Field(
        60.0,
        ge=1,
        le=600,
        description="Longest any green may last: a green whose passage never clears the stop line "
        "(a lost or stopped truck, an officer release) ends here.",
    )
    readback: ReadbackConfig | None = None
    watchdog: WatchdogConfig = WatchdogConfig()
    start_closed: bool = Field(False, description="Start with the lane closed (an officer must open it).")
    state_file: Path | None = Field(
        None, description="Where the signal records its state (lane closed survives restarts; read by diag)."
    )

    @model_validator(mode="after")
    def _distinct_pins(self) -> SignalConfig:
        used: dict[int, str] = {}
        named = [
            ("pins.red", self.pins.red),
            ("pins.amber", self.pins.amber),
            ("pins.green", self.pins.green),
            ("pins.barrier", self.pins.barrier),
            ("pins.closed_sign", self.pins.closed_sign),
            ("watchdog.heartbeat_pin", self.watchdog.heartbeat_pin),
        ]
        if self.readback is not None:
            named += [
                ("readback.red", self.readback.red),
                ("readback.amber", self.readback.amber),
                ("readback.green", self.readback.green),
            ]
        for name, pin in named:
            if pin is None:
                continue
            if pin in used:
                raise ValueError(f"{name} uses pin {pin}, already used by {used[pin]}")
            used[pin] = name
        return self
