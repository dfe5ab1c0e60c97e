"""``edge-agent diag modbus``: read a Modbus device the way the agent does, or one raw block.

Two forms::

    edge-agent diag modbus --config lane.toml --device wim [--watch]
    edge-agent diag modbus --url rtu:///dev/ttyUSB0?baud=19200 --unit 1 --read holding:100:2:f32

The first reads and decodes the whole register map of a configured device (``wim`` or ``loops``),
once or every ``--interval`` seconds with ``--watch``. The second does one raw read for
commissioning a new controller and prints each register (decimal, hex) and, with a type, the
decoded value(s). Exit status: 0 answered, 1 the device failed to answer, 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from drivers.errors import ConfigError, DeviceDisconnected, DeviceError, DeviceTimeout
from drivers.modbus.client import ExceptionReplyError, ModbusFrameError, ModbusLink
from drivers.modbus.line import Endpoint, parse_url
from drivers.modbus.regmap import (
    Point,
    PointType,
    ReadRequest,
    RegisterMapError,
    Table,
    decode,
    decode_value,
    plan_reads,
)
from edge_agent.config import ConfigInvalid, load_config
from edge_agent.config.sensors import ModbusLoopsConfig, ModbusWimConfig
from edge_agent.diag.common import agent_holding, refuse

EXIT_OK, EXIT_DEVICE, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the ``modbus`` diagnostic to ``edge-agent diag``."""
    p = subparsers.add_parser(
        "modbus",
        help="read a Modbus device (configured map, or one raw read)",
        description="Read a configured device's whole register map (refused while the agent runs), or do "
        "one raw read when commissioning. Exit 0 answered, 1 no answer (with what to check), 2 usage.",
        epilog="example: edge-agent diag modbus --config /etc/edge-agent/lane.toml --device wim --watch\n"
        "         edge-agent diag modbus --url tcp://192.0.2.10:502 --unit 1 --read holding:100:2:f32",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="lane TOML file (with --device)")
    p.add_argument("--device", choices=["wim", "loops"], help="configured device whose map to read")
    p.add_argument("--watch", action="store_true", help="repeat until interrupted")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between --watch reads (default 1)")
    p.add_argument("--count", type=int, default=0, help="stop --watch after N reads (0 = never)")
    p.add_argument("--url", help="tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=19200&parity=N&stopbits=1")
    p.add_argument("--unit", type=int, default=1, help="unit (slave) id for --url (default 1)")
    p.add_argument(
        "--read",
        metavar="TABLE:ADDR:COUNT[:TYPE]",
        help="raw read, e.g. holding:100:2:f32 (tables: coil, discrete, holding, input)",
    )
    p.add_argument(
        "--word-order",
        choices=["big", "little"],
        default="big",
        help="32-bit word order for --read types (default big = ABCD)",
    )
    p.add_argument("--timeout", type=float, default=1.0, help="reply timeout in seconds (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the diagnostic; see the module doc for the exit status."""
    if args.url or args.read:
        if not (args.url and args.read) or args.config or args.device:
            print(
                "use either --url URL --read TABLE:ADDR:COUNT[:TYPE] or --config FILE --device NAME",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return asyncio.run(_raw(args))
    if not (args.config and args.device):
        print(
            "give --config FILE --device wim|loops, or --url URL --read TABLE:ADDR:COUNT[:TYPE]",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        cfg = load_config(args.config)
    except ConfigInvalid as exc:
        for key, reason in exc.errors:
            print(f"{args.config}: {key}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    sock = agent_holding(args.config)
    if sock is not None:
        return refuse(f"the {args.device} controller", sock, args.config)
    dev = cfg.devices.wim if args.device == "wim" else cfg.devices.loops
    if not isinstance(dev, ModbusWimConfig | ModbusLoopsConfig):
        print(f"devices.{args.device} uses the {dev.backend!r} backend, not Modbus", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_device(args, dev))


def hint(endpoint: Endpoint, unit: int) -> str:
    """Say what a technician should check when a device does not answer."""
    if endpoint.is_serial:
        return (
            f"no reply from unit {unit} at {endpoint.line} on {endpoint.device}: "
            "check unit id, baud, parity, A/B wiring and termination"
        )
    return (
        f"no reply from unit {unit} at {endpoint.host}:{endpoint.port}: "
        "check unit id, IP address and that the device speaks Modbus TCP"
    )


def _problem(exc: DeviceError, endpoint: Endpoint, unit: int) -> str:
    if isinstance(exc, DeviceTimeout):
        return hint(endpoint, unit)
    if isinstance(exc, ModbusFrameError):
        if endpoint.is_serial:
            return f"{exc}: garbled replies; check baud, parity, grounding and termination"
        return f"{exc}: replies that are not Modbus TCP; check the port, and that it is not RTU-over-TCP"
    if isinstance(exc, ExceptionReplyError):
        return f"{exc}: the device refused the request; check the address, count and table"
    return str(exc)


def _points_of(dev: ModbusWimConfig | ModbusLoopsConfig) -> list[Point]:
    if isinstance(dev, ModbusWimConfig):
        return list(dev.registers.points().values())
    return [Point(name, Table(dev.table), addr, PointType.BOOL) for name, addr in dev.addresses.items()]


async def _device(args: argparse.Namespace, dev: ModbusWimConfig | ModbusLoopsConfig) -> int:
    points = _points_of(dev)
    plan = plan_reads(points, max_gap=dev.max_gap)
    reads = ", ".join(f"{r.table.value}:{r.address}:{r.count}" for r in plan)
    print(f"{args.device} at {dev.url} unit {dev.unit}: {len(points)} points in {len(plan)} read(s): {reads}")
    print(f"tried: read {args.device}'s map from unit {dev.unit} at {dev.url}", file=sys.stderr)
    n = 0
    async with ModbusLink(dev.url, timeout_s=dev.timeout_s, name=args.device) as link:
        try:
            while True:
                await link.connect()
                values = decode(points, await link.read_plan(plan, dev.unit))
                for p in points:
                    unit = f" {p.unit}" if p.unit else ""
                    print(f"  {p.name:<16} {p.table.value}:{p.address:<5} {_fmt(values[p.name])}{unit}")
                n += 1
                if not args.watch or (args.count and n >= args.count):
                    return EXIT_OK
                print("--")
                await asyncio.sleep(args.interval)
        except DeviceError as exc:
            print(f"  answered: {_problem(exc, link.endpoint, dev.unit)}", file=sys.stderr)
            return EXIT_DEVICE


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def parse_read(spec: str, word_order: str = "big") -> tuple[ReadRequest, Point | None]:
    """Parse ``TABLE:ADDR:COUNT[:TYPE]`` into a request and the point to decode it as (if a type)."""
    parts = spec.split(":")
    if len(parts) not in (3, 4):
        raise ConfigError(f"{spec!r}: expected TABLE:ADDR:COUNT[:TYPE], e.g. holding:100:2:f32")
    try:
        table = Table(parts[0])
    except ValueError:
        raise ConfigError(f"{spec!r}: table must be one of {[t.value for t in Table]}") from None
    try:
        address, count = int(parts[1], 0), int(parts[2], 0)
    except ValueError:
        raise ConfigError(f"{spec!r}: address and count are integers") from None
    limit = 2000 if table.is_bits else 125
    if not 0 <= address <= 0xFFFF or not 1 <= count <= limit or address + count > 0x10000:
        raise ConfigError(f"{spec!r}: address 0..65535 and count 1..{limit}")
    point = None
    if len(parts) == 4:
        try:
            kind = PointType(parts[3])
        except ValueError:
            raise ConfigError(f"{spec!r}: type must be one of {[t.value for t in PointType]}") from None
        try:
            point = Point("value", table, address, kind, word_order, length=2 * count)
        except RegisterMapError as exc:
            raise ConfigError(f"{spec!r}: {exc}") from None
        if point.width > count:
            raise ConfigError(f"{spec!r}: a {kind.value} needs {point.width} registers")
    return ReadRequest(table, address, count), point


def decode_block(point: Point, words: list[int]) -> list[object]:
    """Decode consecutive values of ``point``'s type from a raw block (a string takes it all)."""
    if point.type is PointType.STRING:
        return [decode_value(point, words[: point.width])]
    w = point.width
    return [decode_value(point, words[i : i + w]) for i in range(0, len(words) - w + 1, w)]


async def _raw(args: argparse.Namespace) -> int:
    try:
        endpoint = parse_url(args.url)
        req, point = parse_read(args.read, args.word_order)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    print(f"tried: {args.read} from unit {args.unit} at {endpoint.describe()}", file=sys.stderr)
    async with ModbusLink(endpoint, timeout_s=args.timeout, name="diag") as link:
        try:
            await link.connect()
            words = await link.read(req, args.unit)
        except DeviceError as exc:
            if isinstance(exc, DeviceDisconnected):
                print(f"  answered: {exc}", file=sys.stderr)
            else:
                print(f"  answered: {_problem(exc, endpoint, args.unit)}", file=sys.stderr)
            return EXIT_DEVICE
    print(f"{req.table.value}:{req.address}:{req.count} from unit {args.unit} at {endpoint.describe()}")
    for i, w in enumerate(words):
        if req.table.is_bits:
            print(f"  {req.address + i:<5} {w}")
        else:
            print(f"  {req.address + i:<5} {w:>5}  0x{w:04X}")
    if point is not None:
        values = ", ".join(_fmt(v) for v in decode_block(point, words))
        print(f"  as {point.type.value} ({point.word_order}): {values}")
    return EXIT_OK
