"""Modbus benchmark: achieved poll rate against the line's ceiling, and the agent's CPU at its poll rate.

Run: ``.venv/bin/python bench/modbus_bench.py [--seconds 3]``

The simulated devices run in a child process (so the CPU figures are the agent's alone):
a WIM controller over TCP and over RTU on paced pty lines at 9600 and 115200 baud, and a loop card
over TCP.

1. RTU: the agent's link polls the WIM status plan back to back; the rate is compared with the line
   ceiling 1 / (frame bytes x 11 bits / baud + two 3.5-character gaps).
2. TCP: the agent's link against a bare ``AsyncModbusTcpClient`` loop reading the same registers.
3. CPU: a WimSource and a LoopSource poll at their configured rates; process CPU time / wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import time
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from drivers.modbus.client import ModbusLink
from drivers.modbus.line import cycle_time, parse_url
from drivers.modbus.regmap import plan_reads
from drivers.modbus.wim_map import STATUS_ROLES, default_wim_points
from edge_agent.clock import SystemClock
from edge_agent.config.sensors import ModbusLoopsConfig, ModbusWimConfig
from edge_agent.loops import open_loop_source
from edge_agent.wim import WimSource

STATUS = [default_wim_points()[r] for r in STATUS_ROLES]
PLAN = plan_reads(STATUS)


def _devices(conn: Any) -> None:
    from hw_sim.modbus_loops import LoopCard
    from hw_sim.modbus_wim import WimController

    async def main() -> None:
        wims = [
            WimController(),
            WimController(transport="rtu", baud=9600),
            WimController(transport="rtu", baud=115200),
        ]
        card = LoopCard()
        for w in wims:
            await w.__aenter__()
        await card.__aenter__()
        conn.send([w.url for w in wims] + [card.url])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        for w in wims:
            await w.close()
        await card.close()

    asyncio.run(main())


async def _link_rate(url: str, seconds: float) -> float:
    async with ModbusLink(url, timeout_s=1.0) as link:
        await link.connect()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await link.read_plan(PLAN, 1)
            n += 1
        return n / (time.perf_counter() - t0)


async def _bare_tcp_rate(url: str, seconds: float) -> float:
    ep = parse_url(url)
    client = AsyncModbusTcpClient(ep.host, port=ep.port)
    await client.connect()
    req = PLAN[0]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await client.read_input_registers(req.address, count=req.count, device_id=1)
        n += 1
    client.close()
    return n / (time.perf_counter() - t0)


async def _agent_cpu(wim_url: str, loops_url: str, seconds: float) -> dict[str, float]:
    wim_cfg = ModbusWimConfig.model_validate({"url": wim_url})
    loops_cfg = ModbusLoopsConfig.model_validate({"url": loops_url})
    clock = SystemClock()
    wim, loops = WimSource(wim_cfg, clock), open_loop_source(loops_cfg, clock)
    tasks = [asyncio.create_task(wim.run(lambda e: None)), asyncio.create_task(loops.run(lambda e: None))]
    await asyncio.sleep(0.5)
    c0, w0 = time.process_time(), time.perf_counter()
    r0 = wim.health().counters["requests"] + loops.health().counters["requests"]
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    reqs = wim.health().counters["requests"] + loops.health().counters["requests"] - r0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "wim_poll_s": wim_cfg.poll_interval_s,
        "loops_poll_s": loops_cfg.poll_interval_s,
        "requests_per_s": round(reqs / wall, 1),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 2),
    }


async def bench(seconds: float, urls: list[str]) -> dict[str, Any]:
    """Run every measurement against the devices at ``urls``."""
    wim_tcp, rtu_9600, rtu_115200, loops_tcp = urls
    out: dict[str, Any] = {"plan": [f"{r.table.value}:{r.address}:{r.count}" for r in PLAN]}
    for name, url in (("rtu_9600", rtu_9600), ("rtu_115200", rtu_115200)):
        ceiling = 1 / cycle_time(PLAN, parse_url(url))
        rate = await _link_rate(url, seconds)
        out[name] = {
            "ceiling_hz": round(ceiling, 1),
            "achieved_hz": round(rate, 1),
            "ratio": round(rate / ceiling, 3),
        }
    agent = await _link_rate(wim_tcp, seconds)
    bare = await _bare_tcp_rate(wim_tcp, seconds)
    out["tcp"] = {
        "bare_pymodbus_hz": round(bare, 1),
        "agent_link_hz": round(agent, 1),
        "ratio": round(agent / bare, 3),
    }
    out["agent_cpu"] = await _agent_cpu(wim_tcp, loops_tcp, seconds)
    return out


def main() -> None:
    """Start the devices in a child process, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    args = parser.parse_args()
    here, there = mp.Pipe()
    child = mp.get_context("spawn").Process(target=_devices, args=(there,), daemon=True)
    child.start()
    try:
        urls = here.recv()
        print(json.dumps(asyncio.run(bench(args.seconds, urls)), indent=2))
    finally:
        here.send("stop")
        child.join(10)


if __name__ == "__main__":
    main()
