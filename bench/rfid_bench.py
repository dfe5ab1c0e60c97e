"""RFID throughput: the pure parser, and tag reads end to end through the pty simulator.

Run from the repository root: ``python bench/rfid_bench.py [--seconds 3] [--tags 20]``.
End to end, the simulator paces its replies at the line rate (8N1: 10 bits a byte), so reads/s is
printed beside the line's ceiling (tag-report bytes x 10 bits / baud) as a ratio; an unpaced run
shows the software's own headroom.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.rfid import r2000
from drivers.rfid.reader import LinkUp, ReaderEvent, ReaderSettings, TagReader, TagSeen
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.world import FieldTag


def epc(i: int) -> str:
    return f"30{i:022X}"


def bench_parser(frames: int = 200_000) -> None:
    one = [r2000.encode_tag_report(1, 0x89, 1, epc(i), -50) for i in range(100)]
    stream = b"".join(one) * (frames // 100)
    for label, decode in (("parse", False), ("parse+decode", True)):
        p = r2000.FrameParser()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(stream), 4096):
            got = p.feed(stream[i : i + 4096])
            n += len(got)
            if decode:
                for f in got:
                    r2000.decode_reply(f)
        dt = time.perf_counter() - t0
        print(f"parser {label:13s}: {n / dt:12,.0f} frames/s ({len(stream) / dt / 1e6:.1f} MB/s, {n} frames)")


async def bench_end_to_end(seconds: float, tags: int, baud: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with SimulatedRfidReader(link_path=Path(tmp) / "rfid", baud=baud) as sim:
            sim.set_tags([FieldTag(epc(i), 1, -50.0) for i in range(tags)])
            reads = 0
            up = asyncio.Event()

            def on_event(ev: ReaderEvent) -> None:
                nonlocal reads
                if isinstance(ev, TagSeen):
                    reads += 1
                elif isinstance(ev, LinkUp):
                    up.set()

            settings = ReaderSettings(port=sim.port, baud=baud or 115200, cadence_s=0.0, reply_timeout_s=1.0)
            reader = TagReader(settings, on_event)
            task = asyncio.create_task(reader.run())
            await asyncio.wait_for(up.wait(), 5.0)
            await asyncio.sleep(0.3)  # warm up
            r0, t0 = reads, time.perf_counter()
            await asyncio.sleep(seconds)
            rate = (reads - r0) / (time.perf_counter() - t0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    report = len(r2000.encode_tag_report(1, 0x89, 1, epc(0), -50))
    end = len(r2000.encode_round_end(1, 0x89, 1, 0, 0))
    line = baud or 115200
    ceiling = line / (report * 10)
    with_rounds = line / ((report * tags + end) * 10) * tags
    label = f"paced at {baud} baud" if baud else "unpaced pty      "
    print(
        f"end to end {label}: {rate:8,.0f} reads/s | line ceiling {ceiling:6,.0f} reads/s "
        f"({report}-byte reports x 10 bits / {line} baud) -> ratio {rate / ceiling:5.2f} "
        f"| ceiling with round-end frames ({tags} tags/round) {with_rounds:6,.0f} "
        f"-> ratio {rate / with_rounds:5.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--tags", type=int, default=20, help="tags in the field per round")
    args = ap.parse_args()
    bench_parser()
    asyncio.run(bench_end_to_end(args.seconds, args.tags, 115200))
    asyncio.run(bench_end_to_end(args.seconds, args.tags, None))


if __name__ == "__main__":
    main()
