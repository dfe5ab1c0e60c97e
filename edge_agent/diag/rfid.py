"""``edge-agent diag rfid``: inventory a reader for a few seconds and show what it hears.

Prints each tag once (EPC, class by the default EPC patterns, antennas, peak RSSI, read count) and a
summary (frames, checksum errors, junk bytes, reads/s); ``--json`` prints one JSON object per line
instead. Exits 1 with a hint when the reader never answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.rfid.reader import LinkDown, LinkUp, ReaderEvent, ReaderFault, ReaderSettings, TagReader, TagSeen
from edge_agent.config import ConfigInvalid, load_config
from edge_agent.config.rfid import TagPatterns
from edge_agent.diag.common import REFUSED, agent_holding, refuse
from edge_agent.tags import classify

NO_REPLY_HINT = "no reply from reader at {baud} 8N1: check port, baud, address, power"


@dataclass(slots=True)
class _Seen:
    epc: str
    count: int = 0
    peak_rssi: float | None = None
    antennas: set[int] = field(default_factory=set)


def register(subparsers: Any) -> None:
    """Add the ``rfid`` diagnostic to ``edge-agent diag``."""
    p = subparsers.add_parser(
        "rfid",
        help="inventory the RFID reader for a few seconds",
        description="Inventory the reader for a few seconds and list every tag heard (EPC, class, antenna, "
        "RSSI, count). Refused while the agent runs. Exit 0 the reader answered, 1 it did not, 2 refused.",
        epilog="example: edge-agent diag rfid --config /etc/edge-agent/lane.toml --seconds 10\n"
        "         edge-agent diag rfid --port /dev/lane-rfid --protocol r2000 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--port",
        help="serial port: /dev/serial/by-id/..., /dev/ttyUSB0, socket://... (default: the config's)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="lane TOML: its reader's port; refused while its agent runs (default /etc/edge-agent/lane.toml)",
    )
    p.add_argument("--protocol", choices=["r2000", "ascii"], default="r2000", help="reader protocol")
    p.add_argument("--baud", type=int, default=115200, help="line speed, 8N1 (default 115200)")
    p.add_argument(
        "--address", type=_address, default=0xFF, help="R2000 reader address (default 0xFF = broadcast)"
    )
    p.add_argument(
        "--antennas",
        type=_antennas,
        default=(1, 2, 3, 4),
        help="R2000 antennas to inventory in turn, e.g. 1,2 (default 1,2,3,4)",
    )
    p.add_argument("--seconds", type=float, default=5.0, help="how long to inventory (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


def _address(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 1 or 0xFF)") from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError(f"address {text} must be 0-255")
    return value


def _antennas(text: str) -> tuple[int, ...]:
    try:
        ants = tuple(int(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of antennas") from None
    if not ants or any(not 1 <= a <= 4 for a in ants):
        raise argparse.ArgumentTypeError(f"antennas {text!r} must be 1-4")
    return ants


def run(args: argparse.Namespace) -> int:
    """Run the diagnostic; 0 the reader answered, 1 it did not, 2 refused (bad arguments, agent running)."""
    sock = agent_holding(args.config)
    if sock is not None:
        return refuse(f"the RFID reader{f' on {args.port}' if args.port else ''}", sock, args.config)
    if args.port is None:
        if args.config is None:
            print("give --port PORT, or --config FILE to use its reader", file=sys.stderr)
            return REFUSED
        try:
            rfid = load_config(args.config).devices.rfid
        except ConfigInvalid as exc:
            for key, reason in exc.errors:
                print(f"{args.config}: {key}: {reason}", file=sys.stderr)
            return REFUSED
        args.port, args.protocol, args.baud = rfid.port, rfid.backend, rfid.baud
    return asyncio.run(_inventory(args))


async def _inventory(args: argparse.Namespace) -> int:
    settings = ReaderSettings(
        port=args.port,
        protocol=args.protocol,
        baud=args.baud,
        address=args.address,
        antennas=args.antennas,
        cadence_s=0.0,
        reply_timeout_s=0.5,
        silent_after=2,
        backoff_initial_s=0.25,
        backoff_max_s=1.0,
        rf_power_dbm=None,
    )
    seen: dict[str, _Seen] = {}
    problems: list[str] = []
    reader_errors: dict[str, None] = {}

    def on_event(ev: ReaderEvent) -> None:
        if isinstance(ev, TagSeen):
            s = seen.setdefault(ev.epc, _Seen(ev.epc))
            s.count += 1
            if ev.antenna is not None:
                s.antennas.add(ev.antenna)
            if ev.rssi_dbm is not None:
                s.peak_rssi = ev.rssi_dbm if s.peak_rssi is None else max(s.peak_rssi, ev.rssi_dbm)
        elif isinstance(ev, LinkDown):
            problems.append(ev.detail)
        elif isinstance(ev, LinkUp):
            problems.clear()
        elif isinstance(ev, ReaderFault) and ev.active:
            reader_errors[ev.detail] = None

    reader = TagReader(settings, on_event, name="diag-rfid")
    started = time.monotonic()
    print(
        f"tried: inventory on {args.port} ({args.protocol}, {args.baud} 8N1) for {args.seconds:g} s",
        file=sys.stderr,
    )
    task = asyncio.create_task(reader.run())
    progress = asyncio.create_task(_progress(seen, args.seconds))
    await asyncio.wait({task}, timeout=max(0.1, args.seconds))
    progress.cancel()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    elapsed = time.monotonic() - started
    _report(args, reader, seen, elapsed, list(reader_errors))
    answered = reader.ever_answered if args.protocol == "r2000" else _heard(reader)
    if not answered:
        hint = NO_REPLY_HINT.format(baud=args.baud)
        if problems:
            hint += f" (last problem: {problems[-1]})"
        print(f"  answered: nothing from the reader\n  check next: {hint}", file=sys.stderr)
        return 1
    print(f"  answered: the reader, {len(seen)} tag(s) heard", file=sys.stderr)
    return 0


async def _progress(seen: dict[str, _Seen], seconds: float) -> None:
    """A line a second on a terminal, so a long inventory shows it is alive."""
    if not sys.stderr.isatty() or seconds <= 1.0:
        return
    t = 0
    while True:
        await asyncio.sleep(1.0)
        t += 1
        print(f"  ... {t} s, {len(seen)} tag(s) so far", file=sys.stderr, flush=True)


def _heard(reader: TagReader) -> bool:
    st = reader.stats
    return reader.ever_answered and (st["frames"] + st["junk_bytes"] + st["bad_lines"]) > 0


def _report(
    args: argparse.Namespace, reader: TagReader, seen: dict[str, _Seen], elapsed: float, errors: list[str]
) -> None:
    patterns = TagPatterns()
    st = reader.stats
    summary = {
        "frames": st["frames"],
        "checksum_errors": st["checksum_errors"],
        "junk_bytes": st["junk_bytes"],
        "timeouts": st["timeouts"],
        "reader_errors": st["reader_errors"],
        "reads": st["reads"],
        "tags": len(seen),
        "seconds": round(elapsed, 2),
        "reads_per_s": round(st["reads"] / elapsed, 1) if elapsed > 0 else 0.0,
        "reader_error_details": errors,
    }
    if args.json:
        for s in sorted(seen.values(), key=lambda s: s.epc):
            print(
                json.dumps(
                    {
                        "type": "tag",
                        "epc": s.epc,
                        "class": classify(s.epc, patterns).value,
                        "antennas": sorted(s.antennas),
                        "rssi_dbm": s.peak_rssi,
                        "count": s.count,
                    }
                )
            )
        print(json.dumps({"type": "summary", **summary}))
        return
    if seen:
        width = max(len(s) for s in seen) + 2
        print(f"{'EPC':<{width}}{'CLASS':<12}{'ANT':<8}{'RSSI':>6}{'COUNT':>8}")
        for s in sorted(seen.values(), key=lambda s: s.epc):
            ants = ",".join(map(str, sorted(s.antennas))) or "-"
            rssi = "-" if s.peak_rssi is None else f"{s.peak_rssi:.0f}"
            print(f"{s.epc:<{width}}{classify(s.epc, patterns).value:<12}{ants:<8}{rssi:>6}{s.count:>8}")
    else:
        print("no tags heard")
    print(
        f"frames {summary['frames']}, checksum errors {summary['checksum_errors']}, "
        f"junk bytes {summary['junk_bytes']}, timeouts {summary['timeouts']}, "
        f"reads {summary['reads']} ({summary['reads_per_s']} reads/s over {summary['seconds']} s)"
    )
    for detail in errors:
        print(f"reader reported: {detail}")
