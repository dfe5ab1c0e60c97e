"""The wired agent: safety invariants that only hold for the whole (crash -> red, silent loops -> red)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.app import Agent, Hooks, run_agent
from edge_agent.clock import ScaledClock
from edge_agent.domain import SignalAspect
from edge_agent.lane import Outcome
from hw_sim.camera import SimCamera, SimCameraRig
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.player import Layout, Player
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.scenario import generate
from tests.lanes import sim_config
from tests.mosquitto import Mosquitto


@dataclass
class Lane:
    agent: Agent
    clock: ScaledClock
    rfid: SimulatedRfidReader
    wim: WimController
    loops: LoopCard
    rig: SimCameraRig


@contextlib.asynccontextmanager
async def lane(tmp_path: Path, broker: Mosquitto, on_outcome: object = None) -> AsyncIterator[Lane]:
    clock = ScaledClock(20.0)
    async with contextlib.AsyncExitStack() as stack:
        rfid = await stack.enter_async_context(SimulatedRfidReader("r2000", link_path=tmp_path / "rfid0"))
        wim = await stack.enter_async_context(WimController())
        loops = await stack.enter_async_context(LoopCard())
        rig = SimCameraRig()
        for name in ("front", "container"):
            rig.add(SimCamera(name, clock=clock.monotonic, sleep=clock.sleep, fps=4.0))
        cfg = sim_config(
            tmp_path, rfid_port=rfid.port, wim_url=wim.url, loops_url=loops.url, mqtt_url=broker.url
        )
        agent = Agent(cfg, clock=clock, hooks=Hooks(rig.cameras, on_outcome))  # type: ignore[arg-type]
        await stack.enter_async_context(agent)
        yield Lane(agent, clock, rfid, wim, loops, rig)


async def until(predicate: object, limit_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_an_exception_in_the_lane_ends_the_agent_with_the_signal_red(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    class Boom(RuntimeError):
        pass

    seen: list[Outcome] = []

    def explode(o: Outcome) -> None:
        seen.append(o)
        if o.green:
            raise Boom("bug after a release")

    async def main() -> None:
        scenario = generate(4, 1)  # truck 1 is a clean release
        async with lane(tmp_path, mosquitto, explode) as ln:
            await ln.agent.reference.apply_snapshot(scenario.reference_snapshot())
            player = Player(
                scenario,
                Layout(),
                now=ln.clock.monotonic,
                tags=ln.rfid,
                loops=ln.loops,
                wim=ln.wim,
                cameras=ln.rig,
            )
            play = asyncio.create_task(player.run())
            with pytest.raises(ExceptionGroup) as info:
                await asyncio.wait_for(run_agent(ln.agent, asyncio.Event()), 60)
            play.cancel()
            assert info.group_contains(Boom)
            assert seen and seen[0].green  # the bug struck while green was lit
            signal = ln.agent.signal
        # the agent is torn down: the last aspect it commanded is red, and no green is lit after that
        assert signal.aspect is SignalAspect.RED
        last_green = max(i for i, (_, a) in enumerate(signal.history) if a is SignalAspect.GREEN)
        assert any(a is SignalAspect.RED for _, a in signal.history[last_green:])

    asyncio.run(main())


def test_a_silent_loop_card_holds_the_signal_red_until_it_answers(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    async def main() -> None:
        async with lane(tmp_path, mosquitto) as ln:
            stop = asyncio.Event()
            runner = asyncio.create_task(run_agent(ln.agent, stop))
            signal = ln.agent.signal
            await until(lambda: ln.agent.sources[1].health().state.value == "up")
            assert not signal.faults
            ln.loops.server.silent = True
            await until(lambda: "device:loops" in signal.faults)
            assert signal.aspect is SignalAspect.RED
            assert not signal.grant("any-passage")  # no green while the loops are silent
            ln.loops.server.silent = False
            await until(lambda: "device:loops" not in signal.faults)
            stop.set()
            await asyncio.wait_for(runner, 15)

    asyncio.run(main())


def test_a_pi_camera_off_a_pi_is_a_clear_startup_error(tmp_path: Path) -> None:
    from drivers.errors import BackendUnavailable
    from edge_agent.config import validate_config

    base = sim_config(tmp_path)
    data = base.model_dump(mode="json")
    data["devices"]["cameras"] = {"front": {"backend": "picamera2", "role": "plate"}}
    cfg = validate_config(data)

    async def main() -> None:
        with pytest.raises(BackendUnavailable, match="picamera2"):
            async with Agent(cfg):
                pass

    asyncio.run(main())


def test_a_component_that_ignores_cancellation_cannot_hold_the_lane_open(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.app as app_module
    from edge_agent.health import DeviceHealth
    from edge_agent.sources import Emit

    monkeypatch.setattr(app_module, "SHUTDOWN_S", 0.3)
    release = asyncio.Event()

    class Stubborn:
        """A badly behaved source: swallows its cancellation until released."""

        name = "stubborn"

        async def run(self, emit: Emit) -> None:
            while not release.is_set():
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    continue

        def health(self) -> DeviceHealth:
            return DeviceHealth(self.name, "test")

    async def main() -> None:
        async with lane(tmp_path, mosquitto) as ln:
            ln.agent.sources.append(Stubborn())
            stop = asyncio.Event()
            stop.set()
            await asyncio.wait_for(run_agent(ln.agent, stop), 5)  # returns despite the stubborn task
            signal = ln.agent.signal
        assert signal.aspect is SignalAspect.RED
        release.set()
        await asyncio.sleep(0.05)

    asyncio.run(main())
