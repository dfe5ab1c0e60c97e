"""The weigh-in-motion controller's register map: roles, the default layout and the ack scheme.

No public WIM Modbus map exists, so the lane defines one (config may move every point) and the
simulator implements it. The controller keeps a FIFO of vehicle records:

* ``status`` (u16 flags: bit :data:`FAULT_BIT` controller fault, bit :data:`OVERFLOW_BIT` records
  were lost because the FIFO overflowed), ``pending`` (records waiting), ``head_sequence`` (the
  sequence number of the oldest waiting record, 0 when none) and ``lost`` (records dropped).
* The head record itself: ``sequence``, ``time_s``/``time_ms`` (controller clock, Unix time),
  ``speed`` (km/h), ``axle_count``, ``flags`` (quality/violation, 0 = clean), ``gross`` (kg),
  ``axle_weight_1..N`` (kg) and ``axle_spacing_1..N`` (m; spacing 1 is the first axle's, 0).
* ``ack``: the agent writes the head's sequence number there once it has taken the record; the
  controller drops the head only when the value matches, so a repeated ack (reply lost, agent
  retries) never drops a second record, and a record not acked is offered again after reconnect.
"""

from __future__ import annotations

from drivers.modbus.regmap import Point, PointType, Table

FAULT_BIT = 0
OVERFLOW_BIT = 1
MAX_AXLES = 12

STATUS_ROLES = ("status", "pending", "head_sequence", "lost")
RECORD_ROLES = ("sequence", "time_s", "time_ms", "speed", "axle_count", "flags", "gross")


def axle_roles(max_axles: int = MAX_AXLES) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Role names of the per-axle weight and spacing points."""
    return (
        tuple(f"axle_weight_{i}" for i in range(1, max_axles + 1)),
        tuple(f"axle_spacing_{i}" for i in range(1, max_axles + 1)),
    )


def default_wim_points() -> dict[str, Point]:
    """Return the default layout (what :mod:`hw_sim.modbus_wim` serves): role -> point."""
    i, h = Table.INPUT, Table.HOLDING
    pts = [
        Point("status", i, 0, PointType.U16),
        Point("pending", i, 1, PointType.U16),
        Point("head_sequence", i, 2, PointType.U32),
        Point("lost", i, 4, PointType.U16),
        Point("ack", h, 8, PointType.U32),
        Point("sequence", i, 10, PointType.U32),
        Point("time_s", i, 12, PointType.U32, unit="s"),
        Point("time_ms", i, 14, PointType.U16, unit="ms"),
        Point("speed", i, 15, PointType.F32, unit="km/h"),
        Point("axle_count", i, 17, PointType.U16),
        Point("flags", i, 18, PointType.U16),
        Point("gross", i, 19, PointType.U32, unit="kg"),
    ]
    weights, spacings = axle_roles()
    pts += [Point(n, i, 21 + k, PointType.U16, scale=10.0, unit="kg") for k, n in enumerate(weights)]
    pts += [Point(n, i, 33 + k, PointType.U16, scale=0.01, unit="m") for k, n in enumerate(spacings)]
    return {p.name: p for p in pts}
