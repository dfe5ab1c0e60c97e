"""Impossible tag reads on the wire never reach a passage: a whole simulated lane, the reader on a pty.

While each truck's e-seal is under the antenna, the reader's line also carries a seal report whose RSSI
byte is 0xFF (+126 dBm) and a seal with a 62-byte EPC. The genuine seals are joined to their passages;
the impossible ones are counted in the reader's health (``bad_reads``) and joined to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from drivers.rfid import r2000
from edge_agent.app import Agent, Hooks, run_agent
from edge_agent.clock import ScaledClock
from edge_agent.lane import Outcome
from hw_sim.camera import SimCamera, SimCameraRig
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.player import Layout, Player
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.scenario import generate
from hw_sim.world import FieldTag
from tests.lanes import sim_config

pytestmark = pytest.mark.timeout(90)

LOUD_SEAL = "3A" + "0" * 20 + "0B"  # a well-formed EPC-96 seal, reported at an impossible RSSI
LONG_SEAL = "3A" + "E" * 122  # 62 bytes (496 bits): whole words, but no e-seal of this lane is that long


def loud_report(antenna: int) -> bytes:
    """A tag report for LOUD_SEAL whose RSSI byte is 0xFF (encode_tag_report would clamp it)."""
    epc = bytes.fromhex(LOUD_SEAL)
    data = bytes((antenna - 1,)) + r2000.pc_for(epc).to_bytes(2, "big") + epc + b"\xff"
    return r2000.encode_frame(0x01, r2000.Cmd.REAL_TIME_INVENTORY, data)


class SpikedField:
    """The reader's field as the player sets it, plus the impossible reads whenever a real seal is in it."""

    def __init__(self, sim: SimulatedRfidReader, seals: set[str]) -> None:
        self.sim = sim
        self.seals = seals
        self.spiked = 0

    def set_tags(self, tags: list[FieldTag]) -> None:
        near = [t for t in tags if t.epc in self.seals]
        if near:
            tags = [*tags, FieldTag(LONG_SEAL, near[0].antenna, near[0].rssi_dbm)]
            self.sim.inject_junk(loud_report(near[0].antenna))
            self.spiked += 1
        self.sim.set_tags(tags)


def test_an_impossible_rssi_and_an_overlong_epc_are_counted_and_never_joined(tmp_path: Path) -> None:
    scenario = generate(4, 3)
    seals = {epc for truck in scenario.trucks for epc in truck.seal_epcs}
    assert seals, "the scenario needs sealed containers"
    outcomes: list[Outcome] = []

    async def main() -> None:
        clock = ScaledClock(20.0)
        async with contextlib.AsyncExitStack() as stack:
            rfid = await stack.enter_async_context(SimulatedRfidReader("r2000", link_path=tmp_path / "rfid0"))
            wim = await stack.enter_async_context(WimController())
            loops = await stack.enter_async_context(LoopCard())
            rig = SimCameraRig()
            for name in ("front", "container"):
                rig.add(SimCamera(name, clock=clock.monotonic, sleep=clock.sleep, fps=4.0))
            cfg = sim_config(tmp_path, rfid_port=rfid.port, wim_url=wim.url, loops_url=loops.url)
            agent = Agent(cfg, clock=clock, hooks=Hooks(rig.cameras, outcomes.append))
            await stack.enter_async_context(agent)
            await agent.reference.apply_snapshot(scenario.reference_snapshot())
            field = SpikedField(rfid, seals)
            player = Player(
                scenario, Layout(), now=clock.monotonic, tags=field, loops=loops, wim=wim, cameras=rig
            )
            stop = asyncio.Event()
            runner = asyncio.create_task(run_agent(agent, stop))
            await asyncio.wait_for(player.run(), 60)
            deadline = asyncio.get_running_loop().time() + 15
            while len(outcomes) < len(scenario.trucks):
                assert asyncio.get_running_loop().time() < deadline, f"{len(outcomes)} passages decided"
                await asyncio.sleep(0.05)
            health = agent.sources[0].health()
            loud = agent.sources[0].reader.stats["bad_reads"]  # type: ignore[attr-defined]
            stop.set()
            await asyncio.wait_for(runner, 15)
        assert field.spiked > 0
        assert health.name == "rfid"
        assert loud == field.spiked  # every +126 dBm report was dropped by the driver, and counted
        assert health.counters["bad_reads"] > loud  # ... and so was every 62-byte seal, by its kind's length
        joined = {seal for o in outcomes for seal in o.payload["seals"]}
        assert joined & seals, "the genuine seals were joined (so the impossible ones had their chance)"
        assert LOUD_SEAL not in joined and LONG_SEAL not in joined

    asyncio.run(main())
