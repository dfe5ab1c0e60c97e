"""Restarts leave no silent holes: a real `edge-agent run` process killed and started again (issue #9)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from hw_sim.central import Central
from tests.edge_agent.test_command_intake import answer, lane, override
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)


def gaps(central: Central) -> list[dict[str, object]]:
    return [e for e in central.events if e.get("type") == "lane.gap"]


def signal_status(central: Central) -> dict[str, object]:
    assert central.health is not None
    status = central.health["status"]
    assert isinstance(status, dict)
    sig = status["signal"]
    assert isinstance(sig, dict)
    return sig


@pytest.mark.parametrize(
    ("how", "clean"), [(signal.SIGTERM, True), (signal.SIGKILL, False)], ids=["stop", "kill"]
)
def test_a_restart_reports_the_gap_it_left(
    tmp_path: Path, mosquitto: Mosquitto, how: int, clean: bool
) -> None:
    async def main() -> None:
        async with lane(tmp_path, mosquitto) as it:
            assert not gaps(it.central)  # a first start has no gap to report
            await asyncio.sleep(0.5)
            down_at = time.time()
            await it.stop(how)
            await asyncio.sleep(2.0)  # trucks could cross now, unseen
            await it.start()
            up_at = time.time()
            assert await it.central.wait_for(lambda: bool(gaps(it.central)), 10), "no gap event"
            data = gaps(it.central)[0]["data"]
            assert isinstance(data, dict)
            assert data["clean_shutdown"] is clean
            since = datetime.fromisoformat(str(data["from"]).replace("Z", "+00:00")).timestamp()
            until = datetime.fromisoformat(str(data["to"]).replace("Z", "+00:00")).timestamp()
            # the gap covers the time the agent was down (after a kill, from its last sign of life)
            assert since <= down_at + 0.5 and until >= up_at - 5.0 and until - since >= 2.0

    asyncio.run(main())


def test_an_officer_hold_survives_a_power_cut(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async def main() -> None:
        async with lane(tmp_path, mosquitto) as it:
            hold = override("hold")
            it.central.publish_raw(json.dumps(hold).encode())
            assert (await answer(it.central, str(hold["command_id"])))["status"] == "accepted"
            await it.stop(signal.SIGKILL)
            it.central.health = None
            await it.start()
            assert await it.central.wait_for(lambda: it.central.health is not None, 10)
            assert signal_status(it.central)["held"] is True
            assert signal_status(it.central)["aspect"] == "red"

    asyncio.run(main())


def test_a_vehicle_in_the_lane_at_start_holds_red_until_it_clears(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    async def main() -> None:
        async with lane(tmp_path, mosquitto) as it:
            await it.stop(signal.SIGKILL)
            it.loops.set_presence("exit", True)  # a truck on the stop line while the agent was down
            await it.start()

            def fault(active: bool) -> bool:
                return any(
                    f["kind"] == "vehicle_at_start" and f["active"] is active for f in it.central.faults
                )

            assert await it.central.wait_for(lambda: fault(True), 10), it.central.faults
            it.central.health = None
            assert await it.central.wait_for(lambda: it.central.health is not None, 10)
            sig = signal_status(it.central)
            assert sig["aspect"] == "red" and "device:loops" in sig["faults"]  # type: ignore[operator]
            it.loops.set_presence("exit", False)
            assert await it.central.wait_for(
                lambda: any(f["device"] == "loops" and f["active"] is False for f in it.central.faults), 10
            ), it.central.faults

    asyncio.run(main())
