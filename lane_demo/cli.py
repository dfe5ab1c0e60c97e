"""The demo's commands for the ``edge-agent`` CLI (entry point ``edge_agent.commands``)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    from lane_demo.demo import DemoOptions, run_demo

    opts = DemoOptions(
        trucks=args.trucks,
        seed=args.seed,
        mqtt_url=args.mqtt_url,
        json=args.json,
        speedup=args.speedup,
        workdir=args.workdir,
    )
    return asyncio.run(run_demo(opts))


def register(sub: Any) -> None:
    """Add ``demo`` and ``sim``."""
    from lane_demo.sim import register as register_sim

    demo = sub.add_parser(
        "demo",
        help="run a whole simulated lane end to end",
        description="Simulators, a broker, central and the agent in one process; every passage checked "
        "against the scenario's ground truth and what central received. Exit 0 only if all agree.",
        epilog="example: edge-agent demo --trucks 10 --seed 3 --json\n"
        "         edge-agent demo --workdir /tmp/demo & edge-agent status --config /tmp/demo/lane.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--trucks", type=int, default=30, help="number of trucks (default 30)")
    demo.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    demo.add_argument("--mqtt-url", default=None, help="use this broker instead of the embedded one")
    demo.add_argument("--json", action="store_true", help="end with one JSON summary line")
    demo.add_argument(
        "--speedup", type=float, default=20.0, help="simulated time per wall second (default 20)"
    )
    demo.add_argument("--workdir", type=Path, default=None, help="keep the store and config here")
    demo.set_defaults(func=_demo)
    register_sim(sub)
