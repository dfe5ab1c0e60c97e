"""Register maps: what a Modbus device's points mean, how to read them, how to decode them.

Pure functions only (no I/O), so they can be property-tested and fuzzed:

* :class:`Point` describes one named value: table, address, type, word order, scale, offset, unit.
* :func:`plan_reads` groups points into as few read requests as the protocol allows
  (125 registers or 2000 bits per request, gaps of at most ``max_gap`` unused addresses bridged).
* :func:`decode` turns the raw words those requests returned into ``{name: value}``;
  :func:`encode_value` is its inverse (used by the simulators and the round-trip tests).

Bytes inside a register are always big-endian (Modbus); only the order of the 16-bit words of a
32-bit value is selectable: ``"big"`` = ABCD (high word first), ``"little"`` = CDAB.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from drivers.errors import ConfigError


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE = "discrete"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bits(self) -> bool:
        """True for the single-bit tables (coils, discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE)


class PointType(StrEnum):
    """How the raw words of a point are interpreted."""

    BOOL = "bool"
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    F32 = "f32"
    STRING = "string"


MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000

_STRUCT = {PointType.U16: "H", PointType.I16: "h", PointType.U32: "I", PointType.I32: "i", PointType.F32: "f"}

Value = bool | int | float | str
RegisterImage = dict[Table, dict[int, int]]
"""Raw values read from a device: table -> address -> 16-bit word (or 0/1 for bit tables)."""


class RegisterMapError(ConfigError):
    """A register map is inconsistent (bad type for its table, overlapping or oversized point)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One named value of a device.

    ``length`` is the number of characters of a ``string`` point; ``bit`` selects one bit (0 = LSB) of a
    register for a ``bool`` point in a register table (without it, any non-zero register is ``True``).
    Numeric values are ``raw * scale + offset``; they stay ``int`` when scale is 1 and offset 0.
    """

    name: str
    table: Table
    address: int
    type: PointType = PointType.U16
    word_order: str = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    length: int = 0
    bit: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0xFFFF:
            raise RegisterMapError(f"{self.name}: address {self.address} outside 0..65535")
        if self.word_order not in ("big", "little"):
            raise RegisterMapError(f"{self.name}: word_order must be 'big' or 'little'")
        if self.table.is_bits and self.type is not PointType.BOOL:
            raise RegisterMapError(f"{self.name}: a {self.table.value} point must be of type bool")
        if self.type is PointType.STRING and self.length <= 0:
            raise RegisterMapError(f"{self.name}: a string point needs a length > 0")
        if self.bit is not None and (self.type is not PointType.BOOL or self.table.is_bits):
            raise RegisterMapError(f"{self.name}: 'bit' applies only to bool points in register tables")
        if self.bit is not None and not 0 <= self.bit <= 15:
            raise RegisterMapError(f"{self.name}: bit must be 0..15")
        if self.scale == 0 or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise RegisterMapError(f"{self.name}: scale must be finite and non-zero, offset finite")
        if self.address + self.width - 1 > 0xFFFF:
            raise RegisterMapError(f"{self.name}: runs past address 65535")

    @property
    def width(self) -> int:
        """Registers (or bits) the point occupies."""
        if self.table.is_bits or self.type in (PointType.BOOL, PointType.U16, PointType.I16):
            return 1
        if self.type is PointType.STRING:
            return (self.length + 1) // 2
        return 2

    @property
    def end(self) -> int:
        """One past the last address the point occupies."""
        return self.address + self.width


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read of ``count`` contiguous registers (or bits) from ``table`` at ``address``."""

    table: Table
    address: int
    count: int
    points: tuple[Point, ...] = field(default=(), compare=False)

    @property
    def end(self) -> int:
        """One past the last address read."""
        return self.address + self.count


def plan_reads(
    points: Iterable[Point],
    *,
    max_gap: int = 8,
    max_registers: int = MAX_REGISTERS_PER_READ,
    max_bits: int = MAX_BITS_PER_READ,
) -> list[ReadRequest]:
    """Group ``points`` into the fewest contiguous reads, table by table, in address order.

    Two neighbouring points share a request when at most ``max_gap`` unused addresses lie between
    them and the request stays within ``max_registers`` (register tables) or ``max_bits`` (bit
    tables). Points may overlap (e.g. several bits of one status register).
    """
    if max_gap < 0:
        raise ValueError("max_gap must be >= 0")
    by_table: dict[Table, list[Point]] = {}
    for p in points:
        by_table.setdefault(p.table, []).append(p)
    out: list[ReadRequest] = []
    for table in Table:
        pts = sorted(by_table.get(table, ()), key=lambda p: (p.address, p.end))
        limit = max_bits if table.is_bits else max_registers
        start = end = -1
        group: list[Point] = []
        for p in pts:
            if p.width > limit:
                raise RegisterMapError(f"{p.name}: {p.width} words exceed one request ({limit})")
            if group and p.address - end <= max_gap and max(end, p.end) - start <= limit:
                group.append(p)
                end = max(end, p.end)
                continue
            if group:
                out.append(ReadRequest(table, start, end - start, tuple(group)))
            group, start, end = [p], p.address, p.end
        if group:
            out.append(ReadRequest(table, start, end - start, tuple(group)))
    return out


def image_of(requests: Sequence[ReadRequest], results: Sequence[Sequence[int | bool]]) -> RegisterImage:
    """Build a :data:`RegisterImage` from each request and the values it returned."""
    image: RegisterImage = {}
    for req, values in zip(requests, results, strict=True):
        if len(values) < req.count:
            where = f"{req.table.value}:{req.address}"
            raise ValueError(f"{where}: {len(values)} values for {req.count} requested")
        words = image.setdefault(req.table, {})
        for i in range(req.count):
            words[req.address + i] = int(values[i])
    return image


def _words_to_bytes(words: Sequence[int], word_order: str) -> bytes:
    ordered = list(words) if word_order == "big" else list(reversed(words))
    return b"".join((w & 0xFFFF).to_bytes(2, "big") for w in ordered)


def _bytes_to_words(data: bytes, word_order: str) -> list[int]:
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words if word_order == "big" else list(reversed(words))


def decode_value(point: Point, words: Sequence[int]) -> Value:
    """Decode one point from its raw words (exactly ``point.width`` of them)."""
    if len(words) != point.width:
        raise ValueError(f"{point.name}: expected {point.width} words, got {len(words)}")
    if point.type is PointType.BOOL:
        if point.bit is not None:
            return bool((words[0] >> point.bit) & 1)
        return words[0] != 0
    if point.type is PointType.STRING:
        data = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in words)[: point.length]
        return data.split(b"\x00", 1)[0].decode("latin-1").rstrip()
    (raw,) = struct.unpack(">" + _STRUCT[point.type], _words_to_bytes(words, point.word_order))
    if point.scale == 1 and point.offset == 0:
        return raw  # type: ignore[no-any-return]
    return float(raw) * point.scale + point.offset


def encode_value(point: Point, value: Value) -> list[int]:
    """Encode ``value`` into the raw words of ``point`` (the inverse of :func:`decode_value`).

    Scaled integers are rounded to the nearest raw step; out-of-range values raise ``ValueError``.
    """
    if point.type is PointType.BOOL:
        if point.bit is not None:
            return [1 << point.bit if value else 0]
        return [1 if value else 0]
    if point.type is PointType.STRING:
        data = str(value).encode("latin-1")
        if len(data) > point.length:
            raise ValueError(f"{point.name}: {len(data)} characters exceed length {point.length}")
        data = data.ljust(point.width * 2, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if isinstance(value, str):
        raise ValueError(f"{point.name}: a number is needed, got {value!r}")
    raw: float | int = (float(value) - point.offset) / point.scale
    fmt = _STRUCT[point.type]
    if point.type is not PointType.F32:
        raw = round(raw)
    try:
        data = struct.pack(">" + fmt, raw)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{point.name}: {value!r} does not fit a {point.type.value}") from exc
    return _bytes_to_words(data, point.word_order)


def decode(points: Iterable[Point], image: Mapping[Table, Mapping[int, int]]) -> dict[str, Value]:
    """Decode every point from a register image; a point whose words were not read is an error."""
    out: dict[str, Value] = {}
    for p in points:
        table = image.get(p.table, {})
        try:
            words = [table[a] for a in range(p.address, p.end)]
        except KeyError:
            raise RegisterMapError(f"{p.name}: {p.table.value}:{p.address} was not read") from None
        out[p.name] = decode_value(p, words)
    return out


def check_unique(points: Iterable[Point]) -> None:
    """Raise :class:`RegisterMapError` if two points share a name."""
    seen: set[str] = set()
    for p in points:
        if p.name in seen:
            raise RegisterMapError(f"point name {p.name!r} is used twice")
        seen.add(p.name)
