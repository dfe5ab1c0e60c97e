"""Whole-lane figures: decision latency percentiles, passages/s and peak RSS of a simulated lane.

Runs the demo's simulated lane (wire-level RFID on a pty, Modbus/TCP WIM and loop card, embedded broker)
in this process and prints the figures; no peer exists for a whole lane, so no ratio is printed.

    python bench/lane_bench.py [--trucks 60] [--speedup 20] [--seed 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import resource
import statistics
import time

from lane_demo.demo import DemoOptions, play


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trucks", type=int, default=60)
    parser.add_argument("--speedup", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    cpu0 = time.process_time()
    run = asyncio.run(
        play(DemoOptions(trucks=args.trucks, seed=args.seed, speedup=args.speedup), io.StringIO())
    )
    cpu = time.process_time() - cpu0
    lat = sorted(o.latency_ms for o in run.outcomes)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
    agree = sum(
        1
        for t, o in zip(run.scenario.trucks, run.outcomes, strict=False)
        if o.payload["decision"] == t.expected
    )
    figures = {
        "trucks": args.trucks,
        "passages": len(run.outcomes),
        "agree": agree,
        "decision_latency_ms": {
            "p50": round(q[49], 2),
            "p90": round(q[89], 2),
            "p99": round(q[98], 2),
            "max": round(lat[-1], 2),
        },
        "lane_seconds": round(run.scenario.duration_s, 1),
        "wall_s": round(run.wall_s, 1),
        "cpu_s": round(cpu, 1),
        "cpu_share_of_one_core": round(cpu / run.wall_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    d = figures["decision_latency_ms"]
    print(f"passages            {figures['passages']} ({agree} agree with ground truth)")
    print(f"decision latency    p50 {d['p50']} ms  p90 {d['p90']} ms  p99 {d['p99']} ms  max {d['max']} ms")
    print(
        f"simulated lane time {figures['lane_seconds']} s in {figures['wall_s']} s wall (x{args.speedup:g})"
    )
    print(
        f"CPU                 {figures['cpu_s']} s = {figures['cpu_share_of_one_core']:.0%} of one core "
        "(agent, simulators and broker together)"
    )
    print(f"peak RSS            {figures['peak_rss_mb']} MB (same process)")


if __name__ == "__main__":
    main()
