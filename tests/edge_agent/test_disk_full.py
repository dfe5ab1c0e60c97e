"""A full disk is a fault, not a crash loop: a real agent process with its store on a tiny real filesystem.

The store lives on a tmpfs of a few MiB (mounting needs root, as CI runs; skipped otherwise). The disk
is filled while the agent runs and a truck crosses: the agent must stay up, hold red, tell central of
the storage fault from memory, keep answering commands, and once space returns write what it held,
so central receives the passage (issue #9 item 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_sim.camera import SimCameraRig
from hw_sim.central import Central
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.player import Player
from hw_sim.rfid import SimulatedRfidReader
from tests.edge_agent.test_command_intake import OFFICER_KEY, answer, override
from tests.edge_agent.test_service import LAYOUT, bobtail_scenario, config, envelope
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def small_disk(where: Path, size: str = "32m") -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=False)
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte; return the filler file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


def test_a_full_disk_holds_red_reports_and_recovers_without_losing_a_passage(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    _, scenario = bobtail_scenario()
    key = secrets.token_bytes(32)

    async def main(disk: Path) -> None:
        async with (
            SimulatedRfidReader("r2000", link_path=tmp_path / "rfid0") as rfid,
            WimController() as wim,
            LoopCard() as loops,
            Central(mosquitto.url, prefix="lanes", site_id="TEST", lane_id="L9") as central,
        ):
            (tmp_path / "central.key").write_bytes(key)
            (tmp_path / "officer.key").write_bytes(OFFICER_KEY)
            text = config(disk, rfid.port, wim.url, loops.url, mosquitto.url, tmp_path / "central.key")
            text += f"""
[commands.keys.officer]
alg = "hmac-sha256"
secret_file = "{tmp_path / "officer.key"}"
roles = ["officer"]
commands = ["signal.override"]
"""
            cfg = tmp_path / "lane.toml"
            cfg.write_text(text)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "edge_agent.cli",
                "run",
                "--config",
                str(cfg),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert await central.wait_for(lambda: central.availability == "online", 90)
                reply = await central.command(envelope(scenario.reference_snapshot(), key), limit_s=10)
                assert reply["status"] == "accepted", reply
                filler = fill(disk)

                def storage_fault(active: bool) -> bool:
                    return any(f["device"] == "store" and f["active"] is active for f in central.faults)

                # commands are still answered (from memory); the fault reaches central
                hold = override("hold")
                central.publish_raw(json.dumps(hold).encode())
                assert (await answer(central, str(hold["command_id"]), 15))["status"] == "accepted"
                # lifting it cannot be recorded against replays, so it is refused until space returns
                release = override("release")
                central.publish_raw(json.dumps(release).encode())
                refused = await answer(central, str(release["command_id"]), 15)
                assert (refused["status"], refused["reason"]) == ("rejected", "storage_unavailable"), refused
                assert await central.wait_for(lambda: storage_fault(True), 15), central.faults
                # a truck crosses on the full disk: red for it, and it is not forgotten
                loop = asyncio.get_running_loop()
                player = Player(
                    scenario, LAYOUT, now=loop.time, tags=rfid, loops=loops, wim=wim, cameras=SimCameraRig()
                )
                await player.run()
                await asyncio.sleep(1.0)
                assert proc.returncode is None, "the agent died on the full disk"
                assert not central.passages  # not journaled, so not sent: it waits in memory
                filler.unlink()  # space returns
                assert await central.wait_for(lambda: len(central.passages) == 1, 20), "passage lost"
                passage = next(iter(central.passages.values()))
                assert passage["decision"] == "refer" and "device_fault" in passage["reasons"], passage
                assert await central.wait_for(lambda: storage_fault(False), 15), central.faults
            finally:
                if proc.returncode is None:
                    proc.terminate()
                _, err = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0, err.decode()[-3000:]
            assert b"Traceback" not in err, err.decode()[-3000:]

    with small_disk(tmp_path / "disk") as disk:
        asyncio.run(main(disk))
