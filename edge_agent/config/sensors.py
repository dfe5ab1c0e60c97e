"""Loop detectors and the weigh-in-motion controller.

``WimConfig`` and ``LoopsConfig`` are discriminated unions on ``backend``:

* WIM: ``"modbus"`` (TCP or RTU URL, unit id, timing, and the controller's register map, whose
  defaults are the layout of :mod:`drivers.modbus.wim_map` that :mod:`hw_sim.modbus_wim` serves).
* Loops: ``"modbus"`` (a detector card's discrete inputs or coils, one bit address per loop) or
  ``"gpio"`` (one input pin per loop, from the detector's relay or open-collector output).

Both loop backends name their loops: ``entry`` and ``exit`` say which names are the entry and exit
loops, and ``addresses`` / ``pins`` map every name to where it is read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from drivers.modbus.line import parse_url
from drivers.modbus.regmap import Point, PointType, RegisterMapError, Table
from drivers.modbus.wim_map import MAX_AXLES, RECORD_ROLES, STATUS_ROLES, axle_roles
from edge_agent.config.base import Floor, Model
from edge_agent.config.signal import GpioConfig
from edge_agent.errors import ConfigError

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
RECONNECT_FLOOR = Floor(0.1, "reconnecting more than 10 times a second is a storm, not a recovery")
LOOP_POLL_FLOOR = Floor(0.02, "a Modbus read takes ~10 ms on the wire; faster polls queue up")
WIM_POLL_FLOOR = Floor(0.05, "a WIM record arrives once per vehicle; faster polls only load the line")


def _check_url(url: str) -> str:
    try:
        parse_url(url)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return url


class PointConfig(Model):
    """Where one value lives in a device and how to read it."""

    table: Literal["coil", "discrete", "holding", "input"] = "input"
    address: int = Field(ge=0, le=65535, description="0-based protocol address.")
    type: Literal["bool", "u16", "i16", "u32", "i32", "f32", "string"] = "u16"
    word_order: Literal["big", "little"] = Field("big", description="32-bit words: big ABCD, little CDAB.")
    scale: float = Field(1.0, description="value = raw * scale + offset.")
    offset: float = 0.0
    unit: str = ""
    length: int = Field(0, ge=0, le=250, description="Characters of a string point.")
    bit: int | None = Field(None, ge=0, le=15, description="One bit of a register, for a bool point.")

    def point(self, name: str, address: int | None = None) -> Point:
        """Return the driver's :class:`~drivers.modbus.regmap.Point` for this entry."""
        return Point(
            name,
            Table(self.table),
            self.address if address is None else address,
            PointType(self.type),
            self.word_order,
            self.scale,
            self.offset,
            self.unit,
            self.length,
            self.bit,
        )

    @model_validator(mode="after")
    def _consistent(self) -> PointConfig:
        try:
            self.point("point")
        except RegisterMapError as exc:
            raise ValueError(str(exc).removeprefix("point: ")) from None
        return self


class AxleArrayConfig(PointConfig):
    """``count`` consecutive points, one per axle (axle 1 at ``address``)."""

    count: int = Field(MAX_AXLES, ge=1, le=32, description="Axle slots in the record.")


def _pt(address: int, type_: str = "u16", table: str = "input", unit: str = "") -> PointConfig:
    return PointConfig.model_validate({"address": address, "type": type_, "table": table, "unit": unit})


def _axles(address: int, scale: float, unit: str) -> AxleArrayConfig:
    return AxleArrayConfig.model_validate({"address": address, "scale": scale, "unit": unit})


class WimRegisterMap(Model):
    """The WIM controller's registers (defaults: :func:`drivers.modbus.wim_map.default_wim_points`).

    Scheme: poll ``status``/``pending``/``head_sequence``; while records are pending read the head
    record, hand it to the lane, then write its sequence number to ``ack`` (a holding register) so
    the controller drops it from its FIFO.
    """

    status: PointConfig = _pt(0)
    pending: PointConfig = _pt(1)
    head_sequence: PointConfig = _pt(2, "u32")
    lost: PointConfig = _pt(4)
    ack: PointConfig = _pt(8, "u32", "holding")
    sequence: PointConfig = _pt(10, "u32")
    time_s: PointConfig = _pt(12, "u32", unit="s")
    time_ms: PointConfig = _pt(14, unit="ms")
    speed: PointConfig = _pt(15, "f32", unit="km/h")
    axle_count: PointConfig = _pt(17)
    flags: PointConfig = _pt(18)
    gross: PointConfig = _pt(19, "u32", unit="kg")
    axle_weights: AxleArrayConfig = _axles(21, 10.0, "kg")
    axle_spacings: AxleArrayConfig = _axles(33, 0.01, "m")
    fault_bit: int = Field(0, ge=0, le=15, description="Bit of status: controller fault.")
    overflow_bit: int = Field(1, ge=0, le=15, description="Bit of status: FIFO overflowed, records lost.")

    @model_validator(mode="after")
    def _sane(self) -> WimRegisterMap:
        if self.ack.table != "holding" or self.ack.type not in ("u16", "u32"):
            raise ValueError("ack must be a u16 or u32 holding register")
        for role in ("status", "pending", "head_sequence", "lost", "sequence", "axle_count", "flags"):
            cfg: PointConfig = getattr(self, role)
            if cfg.type not in ("u16", "u32") or cfg.table in ("coil", "discrete"):
                raise ValueError(f"{role} must be a u16 or u32 register")
        if self.axle_weights.count != self.axle_spacings.count:
            raise ValueError("axle_weights and axle_spacings need the same count")
        return self

    def points(self) -> dict[str, Point]:
        """Role -> point, with the axle arrays expanded to ``axle_weight_1..N`` / ``axle_spacing_1..N``."""
        out: dict[str, Point] = {}
        for role in (*STATUS_ROLES, "ack", *RECORD_ROLES):
            cfg: PointConfig = getattr(self, role)
            out[role] = cfg.point(role)
        weights, spacings = axle_roles(self.axle_weights.count)
        for arr, names in ((self.axle_weights, weights), (self.axle_spacings, spacings)):
            first = arr.point(names[0])
            for k, name in enumerate(names):
                out[name] = arr.point(name, arr.address + k * first.width)
        return out


class ModbusLinkSettings(Model):
    """How to reach a Modbus device and how hard to try."""

    url: str = Field(description="tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=19200&parity=N&stopbits=1")
    unit: int = Field(1, ge=0, le=247, description="Modbus unit (slave) id.")
    timeout_s: float = Field(0.5, gt=0, le=10)
    max_gap: int = Field(8, ge=0, le=100, description="Unused addresses bridged to merge two reads into one.")
    fault_after: int = Field(3, ge=1, le=100, description="Failed polls in a row = link down.")
    reconnect_min_s: Annotated[float, RECONNECT_FLOOR] = Field(
        0.2, gt=0, le=60, description="First reconnect delay. Floor 0.1 s: faster retries are a storm."
    )
    reconnect_max_s: float = Field(10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _url_ok(cls, url: str) -> str:
        return _check_url(url)

    @model_validator(mode="after")
    def _backoff(self) -> ModbusLinkSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self


class ModbusWimConfig(ModbusLinkSettings):
    """A WIM controller on Modbus TCP or RTU."""

    backend: Literal["modbus"] = "modbus"
    poll_interval_s: Annotated[float, WIM_POLL_FLOOR] = Field(
        0.2,
        gt=0,
        le=10,
        description="Status poll period (lane seconds). Floor 50 ms: a record comes once per vehicle.",
    )
    registers: WimRegisterMap = WimRegisterMap.model_validate({})


class LoopRules(Model):
    """What the lane calls each loop and when a loop is faulty."""

    entry: str = Field("entry", pattern=_NAME, description="Name of the entry loop.")
    exit: str = Field("exit", pattern=_NAME, description="Name of the exit loop (stop line).")
    stuck_after_s: float = Field(
        90.0, gt=0, le=3600, description="A loop occupied longer than this is stuck."
    )
    chatter_changes: int = Field(8, ge=2, le=1000, description="This many changes of one loop ...")
    chatter_window_s: float = Field(2.0, gt=0, le=600, description="... within this window is chatter.")

    def _named(self, where: dict[str, int], what: str) -> None:
        for name in where:
            if not name or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"loop name {name!r} must be letters, digits, '-' or '_'")
        for role in (self.entry, self.exit):
            if role not in where:
                raise ValueError(f"loop {role!r} has no entry in {what}")
        if self.entry == self.exit:
            raise ValueError("entry and exit must be different loops")
        if len(set(where.values())) != len(where):
            raise ValueError(f"two loops share one of {what}")


class ModbusLoopsConfig(ModbusLinkSettings, LoopRules):
    """A loop detector card read over Modbus (discrete inputs or coils)."""

    backend: Literal["modbus"] = "modbus"
    poll_interval_s: Annotated[float, LOOP_POLL_FLOOR] = Field(
        0.05,
        gt=0,
        le=5,
        description="Poll period (lane seconds). Floor 20 ms: a Modbus read takes about 10 ms on the "
        "wire (RTU at 19200 baud), so faster polls only queue up.",
    )
    table: Literal["discrete", "coil"] = "discrete"
    addresses: dict[str, int] = Field(default_factory=lambda: {"entry": 0, "exit": 1})
    active_low: bool = Field(False, description="True when the card reports presence as 0.")
    debounce_ms: int = Field(0, ge=0, le=5000, description="A change must persist this long.")

    @model_validator(mode="after")
    def _loops(self) -> ModbusLoopsConfig:
        self._named(self.addresses, "addresses")
        if any(not 0 <= a <= 65535 for a in self.addresses.values()):
            raise ValueError("addresses must be 0..65535")
        return self


class GpioLoopsConfig(LoopRules):
    """Loop detector outputs wired to GPIO inputs (relay or open collector, through an optocoupler)."""

    backend: Literal["gpio"] = "gpio"
    gpio: GpioConfig | None = Field(None, description="Pin bank; none = the signal's bank.")
    pins: dict[str, int] = Field(default_factory=lambda: {"entry": 5, "exit": 6}, description="BCM pins.")
    active_low: bool = Field(True, description="Presence pulls the input low (contact to ground, pull-up).")
    pull_up: bool = True
    debounce_ms: int = Field(30, ge=0, le=5000, description="A change must persist this long.")

    @model_validator(mode="after")
    def _loops(self) -> GpioLoopsConfig:
        self._named(self.pins, "pins")
        if any(not 0 <= p <= 27 for p in self.pins.values()):
            raise ValueError("pins are BCM numbers 0..27")
        return self


WimConfig = Annotated[ModbusWimConfig, Field(discriminator="backend")]
LoopsConfig = Annotated[ModbusLoopsConfig | GpioLoopsConfig, Field(discriminator="backend")]
AnyLoopsConfig = ModbusLoopsConfig | GpioLoopsConfig
"""The loop configs as a plain union (for annotations outside pydantic models)."""
