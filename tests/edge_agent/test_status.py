"""The technician's CLI driven as a user would (subprocesses) against a real agent on the simulated lane.

``edge-agent status`` healthy, with a device unplugged, with the broker down, with no agent; and the
history commands (``passages``, ``outbox``, ``events``) read the store while the agent runs (issue #12).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from hw_sim.camera import SimCameraRig
from hw_sim.player import Player
from hw_sim.scenario import Scenario
from tests.edge_agent.test_command_intake import Lane, lane
from tests.edge_agent.test_service import LAYOUT, bobtail, envelope
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def status(it: Lane) -> tuple[int, dict[str, Any]]:
    code, out, err = await cli("status", "--config", str(it.cfg), "--json")
    assert out, err
    return code, json.loads(out)


async def until_status(it: Lane, want: int, limit_s: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        code, report = await status(it)
        if code == want:
            return report
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"status stayed {code}, wanted {want}: {json.dumps(report)[:3000]}")
        await asyncio.sleep(0.5)


def device(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in report["devices"] if d["name"] == name or d["kind"] == name)


def test_status_healthy_unplugged_broker_down_and_no_agent(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async def main() -> None:
        async with lane(tmp_path, mosquitto) as it:
            report = await until_status(it, 0)
            assert report["health"] == "healthy" and report["lane"]["state"] == "open"
            assert {d["kind"] for d in report["devices"]} >= {"rfid", "wim", "loops"}
            assert report["uplink"]["state"] == "up" and report["uplink"]["connected_since"]
            code, text, _ = await cli("status", "--config", str(it.cfg))
            assert code == 0 and "HEALTHY" in text and "\033[" not in text  # no colour off a terminal
            # a device unplugged: degraded, and the device says why
            await it.devices["wim"].server.unplug()
            report = await until_status(it, 1)
            wim = device(report, "wim")
            assert wim["state"] != "up" and wim["detail"], wim
            code, text, _ = await cli("status", "--config", str(it.cfg))
            assert code == 1 and "wim" in text and wim["detail"][:20] in text
            await it.devices["wim"].server.replug()
            await until_status(it, 0)
            # the broker down: degraded, the uplink says so, the outbox depth shows
            mosquitto.stop()
            report = await until_status(it, 1)
            assert report["uplink"]["state"] == "down" and report["uplink"]["connected_since"] is None
            mosquitto.start()
            await until_status(it, 0, 30)
            # no agent: exit 3, saying where it looked
            await it.stop(signal.SIGTERM)
            code, text, _ = await cli("status", "--config", str(it.cfg))
            assert code == 3 and "no agent running" in text and "control.sock" in text

    asyncio.run(main())


def test_history_reads_the_store_while_the_agent_runs(tmp_path: Path, mosquitto: Mosquitto) -> None:
    truck = bobtail()
    scenario = Scenario(seed=0, trucks=[truck])
    scenario.trusted_traders.append({"carrier_id": "CARR1", "program": "FAST", "valid_until": None})

    async def main() -> None:
        async with lane(tmp_path, mosquitto) as it:
            key = (tmp_path / "central.key").read_bytes()
            reply = await it.central.command(envelope(scenario.reference_snapshot(), key), limit_s=10)
            assert reply["status"] == "accepted", reply
            follow = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "edge_agent.cli",
                "passages",
                "--config",
                str(it.cfg),
                "--follow",
                "--json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(1.5)  # --follow has started and printed the (empty) history
            loop = asyncio.get_running_loop()
            player = Player(
                scenario,
                LAYOUT,
                now=loop.time,
                tags=it.devices["rfid"],
                loops=it.loops,
                wim=it.devices["wim"],
                cameras=SimCameraRig(),
            )
            await player.run()
            assert follow.stdout is not None
            line = await asyncio.wait_for(follow.stdout.readline(), 20)
            follow.terminate()
            await follow.wait()
            followed = json.loads(line)
            assert followed["decision"] == "refer" and "no_prearrival" in followed["reasons"]
            code, out, err = await cli("passages", "--config", str(it.cfg), "--decision", "refer", "--json")
            assert code == 0, err
            rows = [json.loads(x) for x in out.splitlines()]
            assert [r["passage_id"] for r in rows] == [followed["passage_id"]]
            code, out, _ = await cli("passages", "--config", str(it.cfg), "--decision", "release")
            assert code == 0 and out == ""
            code, out, _ = await cli("passages", "--config", str(it.cfg), "--since", "1h")
            assert code == 0 and followed["passage_id"] in out and "refer" in out
            code, out, _ = await cli("outbox", "--config", str(it.cfg), "--json")
            assert code == 0 and "pending_total" in json.loads(out)
            await it.stop(signal.SIGKILL)
            await it.start()  # the restart leaves a gap event behind
            assert await it.central.wait_for(
                lambda: any(e.get("type") == "lane.gap" for e in it.central.events), 10
            )
            code, out, _ = await cli("events", "--config", str(it.cfg), "--json")
            events = [json.loads(x) for x in out.splitlines()]
            assert code == 0 and any(e.get("type") == "lane.gap" for e in events), events
            code, out, _ = await cli("passages", "--config", str(it.cfg), "--since", "yesterday-ish")
            assert code == 2 and out == ""

    asyncio.run(main())


def test_a_diag_never_opens_what_the_running_agent_holds(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async def main() -> None:
        async with lane(tmp_path, mosquitto) as it:
            cfg = str(it.cfg)
            for args in (
                ("diag", "rfid", "--config", cfg, "--seconds", "1"),
                ("diag", "modbus", "--config", cfg, "--device", "wim"),
                # no state_file in this config: the control socket still tells that an agent runs
                ("diag", "signal", "--config", cfg, "--test", "--lane-closed-confirm"),
            ):
                code, _, err = await cli(*args)
                assert code == 2, (args, err)
                assert "a running agent" in err and "edge-agent status --config" in err, err
            await it.stop(signal.SIGTERM)
            code, out, err = await cli("diag", "modbus", "--config", cfg, "--device", "wim")
            assert code == 0, err  # with the agent stopped, the diag may use the port
            assert "gross" in out or "wim at" in out

    asyncio.run(main())
