"""`edge-agent run` as the service runs it: a real process, real simulators, a real Mosquitto, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from hw_sim.camera import SimCameraRig
from hw_sim.central import Central, signed_command
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.player import Layout, Player
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.scenario import Case, Scenario, Truck
from hw_sim.world import AxleLoad
from tests.mosquitto import Mosquitto

# a short lane so a truck at real time crosses it in a few seconds
LAYOUT = Layout(exit_loop_m=14.0, rfid_antenna_m=6.0, wim_m=3.0, plate_camera_m=1.0, container_camera_m=5.0)


def config(tmp_path: Path, rfid: str, wim: str, loops: str, broker: str, key: Path) -> str:
    return f"""
site_id = "TEST"
lane_id = "L9"
simulation = true
[geometry]
exit_loop_m = {LAYOUT.exit_loop_m}
rfid_antenna_m = {LAYOUT.rfid_antenna_m}
wim_m = {LAYOUT.wim_m}
plate_camera_m = {LAYOUT.plate_camera_m}
container_camera_m = {LAYOUT.container_camera_m}
[policy]
conveyance = "transponder"
[storage]
path = "{tmp_path / "lane.sqlite3"}"
[mqtt]
urls = ["{broker}"]
health_interval_s = 1.0
[devices.rfid]
backend = "r2000"
port = "{rfid}"
cadence_ms = 50
[devices.wim]
backend = "modbus"
url = "{wim}"
poll_interval_s = 0.1
[devices.loops]
backend = "modbus"
url = "{loops}"
poll_interval_s = 0.05
[signal]
gpio = {{ backend = "sim" }}
[commands.keys.central]
alg = "hmac-sha256"
secret_file = "{key}"
roles = ["central"]
commands = ["reference.snapshot", "config.reload"]
"""


def bobtail() -> Truck:
    """A tractor with an empty trailer, declared empty: no container, no seal."""
    return Truck(
        index=0,
        case=Case.CLEAN_EMPTY,
        carrier_id="CARR1",
        plate="ABC123",
        plate_legible=True,
        transponder_epc="30" + "1" * 22,
        fast_card_epc="35" + "2" * 22,
        container=None,
        seal_epcs=(),
        axles=(AxleLoad(5500, 0), AxleLoad(3000, 5.8), AxleLoad(3000, 1.3)),
        length_m=7.0,
        speed_kmh=14.0,
        enter_s=0.5,
        record_id="PA-1",
    )


def envelope(body: dict[str, object], key: bytes, name: str = "reference.snapshot") -> dict[str, object]:
    return signed_command(name, dict(body), key_id="central", key=key)


def bobtail_scenario() -> tuple[Truck, Scenario]:
    """One clean, declared-empty, trusted truck with its pre-arrival record: it should be released."""
    truck = bobtail()
    scenario = Scenario(seed=0, trucks=[truck])
    scenario.prearrivals.append(
        {
            "record_id": "PA-1",
            "carrier_id": "CARR1",
            "transponder": truck.transponder_epc,
            "plate": None,
            "driver_fast_card": truck.fast_card_epc,
            "container": None,
            "seals": [],
            "declared_gross_kg": truck.gross_kg,
            "releasable": True,
        }
    )
    scenario.trusted_traders.append({"carrier_id": "CARR1", "program": "FAST", "valid_until": None})
    return truck, scenario


def test_service_runs_decides_and_stops_cleanly_on_sigterm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    _, scenario = bobtail_scenario()
    key = secrets.token_bytes(32)
    (tmp_path / "central.key").write_bytes(key)

    async def main() -> None:
        async with (
            SimulatedRfidReader("r2000", link_path=tmp_path / "rfid0") as rfid,
            WimController() as wim,
            LoopCard() as loops,
            Central(mosquitto.url, prefix="lanes", site_id="TEST", lane_id="L9") as central,
        ):
            cfg = tmp_path / "lane.toml"
            cfg.write_text(
                config(tmp_path, rfid.port, wim.url, loops.url, mosquitto.url, tmp_path / "central.key")
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "edge_agent.cli",
                "run",
                "--config",
                str(cfg),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(os.environ),
            )
            try:
                assert await central.wait_for(lambda: central.availability == "online", 20), (
                    "agent never online"
                )
                reply = await central.command(envelope(scenario.reference_snapshot(), key), limit_s=10)
                assert reply["status"] == "accepted", reply
                loop = asyncio.get_running_loop()
                player = Player(
                    scenario, LAYOUT, now=loop.time, tags=rfid, loops=loops, wim=wim, cameras=SimCameraRig()
                )
                await player.run()
                assert await central.wait_for(lambda: len(central.passages) == 1, 15), "no passage upstream"
                passage = next(iter(central.passages.values()))
                # declared empty, trusted, transponder + card + weight match: released
                assert passage["decision"] == "release", passage["reasons"]
                assert central.messages["health"] >= 1
                # an edited policy is taken over without a restart; a changed port is not
                cfg.write_text(cfg.read_text().replace('conveyance = "transponder"', 'conveyance = "either"'))
                reply = await central.command(envelope({}, key, "config.reload"), limit_s=10)
                assert reply["status"] == "accepted", reply
                assert reply["result"]["changed"] == ["policy.conveyance"]
                cfg.write_text(cfg.read_text().replace("cadence_ms = 50", "cadence_ms = 60"))
                reply = await central.command(envelope({}, key, "config.reload"), limit_s=10)
                assert reply["status"] == "rejected" and reply["reason"] == "restart_required", reply
                assert "devices.rfid.cadence_ms" in reply["detail"]
            finally:
                proc.send_signal(signal.SIGTERM)
                _, err = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0, err.decode()[-2000:]
            assert await central.wait_for(lambda: central.availability == "offline", 5)

    asyncio.run(main())


def test_service_refuses_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "lane.toml"
    cfg.write_text('site_id = "X"\nlane_id = "Y"\n[devices.rfid]\nbackend = "r2000"\nprot = "/dev/ttyUSB0"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "devices.rfid.prot: unknown key" in proc.stderr
    assert "devices.rfid.port: required key is missing" in proc.stderr
