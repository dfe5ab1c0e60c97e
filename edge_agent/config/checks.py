"""Rules that span sections of a lane config: pins, floors and simulated backends. Pure, no I/O.

:func:`lane_problems` is what ``LaneConfig`` runs once every section is valid on its own. Each
problem is ``(dotted.key, reason)`` naming the key the user wrote, so a technician fixes them all in one
pass:

* **one pin, one master**: across the lamp outputs, the read-back inputs, the heartbeat output and the
  GPIO loop inputs of one pin bank, every pin appears once (a loop input on the red lamp's pin would
  make a phantom vehicle of every green, and reconfigure the lamp's pin as an input);
* **floors**: every field marked :class:`~edge_agent.config.base.Floor` is at least its floor, or, in a
  config that declares ``simulation = true``, above zero;
* **nothing simulated by accident**: a config that does not declare ``simulation = true`` names every
  backend itself (the pin bank, and recognition when it has cameras) and none of them is simulated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from edge_agent.config.base import Floor
from edge_agent.config.signal import GpioConfig, SignalConfig

if TYPE_CHECKING:
    from edge_agent.config import LaneConfig

SIMULATED_GPIO = frozenset({"sim", "simboard"})
"""Pin banks that drive no real lamp: in-process pins, and the ``hw_sim`` relay board."""
SIMULATED_CAMERAS = frozenset({"sim", "files"})
"""Cameras that see no real lane: the scenario player's frames, recorded files replayed."""
SIMULATED_RECOGNITION = frozenset({"sim"})
"""Recognisers that read no pixels: the simulated scene's labels."""

Problem = tuple[str, str]


def lane_problems(cfg: LaneConfig) -> list[Problem]:
    """Every cross-section problem of ``cfg`` (empty when there is none)."""
    return [*pin_problems(cfg), *floor_problems(cfg, simulation=cfg.simulation), *simulated_problems(cfg)]


# ---- pins --------------------------------------------------------------------------------------


def signal_pins(sig: SignalConfig) -> list[tuple[str, int]]:
    """``(key, pin)`` of every pin the signal uses on its bank: lamps, read-back, heartbeat.

    A ``sim`` bank's loopback inputs count too: each is wired to a lamp output.
    """
    named: list[tuple[str, int | None]] = [
        ("signal.pins.red", sig.pins.red),
        ("signal.pins.amber", sig.pins.amber),
        ("signal.pins.green", sig.pins.green),
        ("signal.pins.barrier", sig.pins.barrier),
        ("signal.pins.closed_sign", sig.pins.closed_sign),
        ("signal.watchdog.heartbeat_pin", sig.watchdog.heartbeat_pin),
    ]
    if sig.readback is not None:
        named += [
            ("signal.readback.red", sig.readback.red),
            ("signal.readback.amber", sig.readback.amber),
            ("signal.readback.green", sig.readback.green),
        ]
    if sig.gpio.backend == "sim":
        named += [(f"signal.gpio.loopback.{out}", pin) for out, pin in sig.gpio.loopback.items()]
    return [(key, pin) for key, pin in named if pin is not None]


def same_bank(a: GpioConfig, b: GpioConfig) -> bool:
    """True when ``a`` and ``b`` open the same physical pins.

    Every ``rpigpio`` bank is the Pi's one header; ``simboard`` banks are the same board when they
    share a socket; each ``sim`` bank is a fresh set of in-process pins.
    """
    if a.backend == "rpigpio" and b.backend == "rpigpio":
        return True
    if a.backend == "simboard" and b.backend == "simboard":
        return a.socket == b.socket
    return False


def pin_problems(cfg: LaneConfig) -> list[Problem]:
    """Loop inputs on a pin the signal's bank already uses for something else."""
    loops = cfg.devices.loops
    if loops.backend != "gpio":
        return []
    if loops.gpio is not None and not same_bank(loops.gpio, cfg.signal.gpio):
        return []
    used = dict((pin, key) for key, pin in reversed(signal_pins(cfg.signal)))
    return [
        (f"devices.loops.pins.{name}", f"pin {pin} is also {used[pin]}")
        for name, pin in loops.pins.items()
        if pin in used
    ]


# ---- floors ------------------------------------------------------------------------------------


def floor_problems(model: BaseModel, *, simulation: bool, prefix: str = "") -> list[Problem]:
    """Fields of ``model`` (and every section under it) below their :class:`Floor`."""
    out: list[Problem] = []
    for key, value, floor in _floored(model, prefix):
        if simulation:
            if value <= 0:
                out.append((key, f"{value:g} must be above 0, even in a simulation (0 removes the step)"))
        elif value < floor.minimum:
            out.append((key, f"{value:g} is below the floor of {floor.minimum:g} ({floor.reason})"))
    return out


def _floored(node: Any, prefix: str) -> Iterator[tuple[str, float, Floor]]:
    if isinstance(node, BaseModel):
        for name, info in type(node).model_fields.items():
            value = getattr(node, name)
            key = f"{prefix}.{name}" if prefix else name
            for mark in info.metadata:
                if isinstance(mark, Floor) and isinstance(value, int | float):
                    yield key, float(value), mark
            yield from _floored(value, key)
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from _floored(value, f"{prefix}.{name}")
    elif isinstance(node, tuple | list):
        for i, value in enumerate(node):
            yield from _floored(value, f"{prefix}[{i}]")


# ---- simulated backends ------------------------------------------------------------------------


def simulated_backends(cfg: LaneConfig) -> list[tuple[str, str]]:
    """``(key, backend)`` of every simulated backend ``cfg`` runs on (the demo's whole lane)."""
    found: list[tuple[str, str]] = []
    if cfg.signal.gpio.backend in SIMULATED_GPIO:
        found.append(("signal.gpio.backend", cfg.signal.gpio.backend))
    loops = cfg.devices.loops
    if loops.backend == "gpio" and loops.gpio is not None and loops.gpio.backend in SIMULATED_GPIO:
        found.append(("devices.loops.gpio.backend", loops.gpio.backend))
    for name, cam in cfg.devices.cameras.items():
        if cam.backend in SIMULATED_CAMERAS:
            found.append((f"devices.cameras.{name}.backend", cam.backend))
    if cfg.devices.cameras and cfg.recognition.backend in SIMULATED_RECOGNITION:
        found.append(("recognition.backend", cfg.recognition.backend))
    return found


def simulated_problems(cfg: LaneConfig) -> list[Problem]:
    """In a config that is not a simulation: backends left to a (simulated) default, or simulated."""
    if cfg.simulation:
        return []
    out: list[Problem] = []
    if "signal" not in cfg.model_fields_set or "gpio" not in cfg.signal.model_fields_set:
        out.append(
            (
                "signal.gpio",
                "required key is missing: a lane names its pin bank (e.g. "
                'gpio = { backend = "rpigpio" }); the default is simulated',
            )
        )
    if cfg.devices.cameras and "recognition" not in cfg.model_fields_set:
        out.append(
            (
                "recognition",
                "required key is missing: a lane with cameras names its recogniser "
                '(e.g. backend = "tflite"); the default is simulated',
            )
        )
    named = {key for key, _ in out}
    for key, backend in simulated_backends(cfg):
        if key.rsplit(".", 1)[0] not in named:
            out.append(
                (key, f"simulated backend {backend!r} in a config that does not declare simulation = true")
            )
    return out
