"""``config.apply`` end to end: a real agent and Mosquitto, central's signed command, the unit's lifecycle.

The test plays systemd's part of the lifecycle, which cannot run here (no systemd as PID 1): after the
agent stops on its own it runs ``edge-agent update apply-staged`` (the unit's ``ExecStartPre=+``) and
starts ``edge-agent run`` again (``Restart=always``). Everything else is the real agent and CLI on real
files: the staged file, the trial marker, the rollback and the ``lane.update`` events central receives.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.auth import sign_command
from edge_agent.config_apply import STAGED, TRIAL
from edge_agent.ids import new_id
from hw_sim.central import Central
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
KEY = b"c" * 32


def lane_toml(tmp_path: Path, broker: str, *, extra: str = "") -> str:
    (tmp_path / "central.key").write_bytes(KEY)
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace('path = "var/demo/lane.sqlite3"', f'path = "{tmp_path / "state" / "lane.sqlite3"}"')
    text = text.replace('secret_file = "var/demo/central.key"', f'secret_file = "{tmp_path / "central.key"}"')
    text = text.replace('urls = ["mqtt://127.0.0.1:1883"]', f'urls = ["{broker}"]')
    text = text.replace(
        'commands = ["reference.snapshot", "reference.delta"]',
        'commands = ["reference.snapshot", "reference.delta", "config.apply"]',
    )
    assert "config.apply" in text and broker in text
    return text + "\n[updates]\nsettle_s = 1\n" + extra


def apply_command(text: str, *, sha: str | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "schema": "lane.command/1",
        "command_id": new_id(),
        "name": "config.apply",
        "issued_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "nonce": secrets.token_hex(8),
        "issuer": {"id": "central", "role": "central"},
        "body": {"config": text, "sha256": sha or hashlib.sha256(text.encode()).hexdigest()},
    }
    return sign_command(env, alg="hmac-sha256", key_id="central-demo", key=KEY)


class Service:
    """``edge-agent run`` as systemd would run it, with ExecStartPre before each start."""

    def __init__(self, cfg: Path) -> None:
        self.cfg = cfg
        self.proc: asyncio.subprocess.Process | None = None
        self.pre: list[str] = []

    async def start(self) -> None:
        pre = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "edge_agent.cli", "update", "apply-staged", "--config", str(self.cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert pre.returncode == 0, pre.stderr
        self.pre.append(pre.stdout.strip())
        self.proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "edge_agent.cli", "run", "--config", str(self.cfg)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=dict(os.environ),
        )

    async def exited(self, limit_s: float) -> int:
        assert self.proc is not None
        rc = await asyncio.wait_for(self.proc.wait(), limit_s)
        self.proc = None
        return rc

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await self.exited(60)


def updates(central: Central) -> list[dict[str, Any]]:
    return [e["data"] for e in central.events if e.get("type") == "lane.update"]


def test_a_pushed_config_is_applied_and_confirmed(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = tmp_path / "lane.toml"
    cfg.write_text(lane_toml(tmp_path, mosquitto.url))
    old = cfg.read_text()
    new = lane_toml(tmp_path, mosquitto.url, extra="\n[retention]\ndays = 7\n")

    async def main() -> None:
        async with Central(mosquitto.url, prefix="lanes", site_id="DEMO-POE", lane_id="C1") as central:
            svc = Service(cfg)
            await svc.start()
            try:
                assert await central.wait_for(lambda: central.availability == "online", 60)
                bad = await central.command(apply_command("site_id = 'X'\n"))
                assert (bad["status"], bad["reason"]) == ("rejected", "invalid"), bad
                wrong = await central.command(apply_command(new, sha="0" * 64))
                assert (wrong["status"], wrong["reason"]) == ("rejected", "invalid"), wrong
                moved = new.replace(str(tmp_path / "state" / "lane.sqlite3"), str(tmp_path / "other.sqlite3"))
                refused = await central.command(apply_command(moved))
                assert (refused["status"], refused["reason"]) == ("rejected", "restart_required"), refused
                assert cfg.read_text() == old, "nothing changes on a refused config"

                ok = await central.command(apply_command(new))
                assert ok["status"] == "accepted", ok
                assert (tmp_path / "state" / STAGED).read_text() == new
                assert await svc.exited(120) == 0, "the agent stops cleanly to restart on the new config"
                central.availability = None
                await svc.start()  # ExecStartPre installs it on trial
                assert "on trial" in svc.pre[-1], svc.pre
                assert cfg.read_text() == new and cfg.with_name("lane.toml.prev").read_text() == old
                assert await central.wait_for(lambda: central.availability == "online", 60)
                assert await central.wait_for(lambda: updates(central), 60), "no lane.update upstream"
                (done,) = updates(central)
                assert (done["outcome"], done["sha256"]) == (
                    "applied",
                    hashlib.sha256(new.encode()).hexdigest(),
                )
                assert not (tmp_path / "state" / TRIAL).exists(), "the trial is confirmed"
            finally:
                await svc.stop()

    asyncio.run(main())


def test_a_pushed_config_that_stops_the_agent_is_rolled_back(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = tmp_path / "lane.toml"
    cfg.write_text(lane_toml(tmp_path, mosquitto.url))
    old = cfg.read_text()
    junk = tmp_path / "plate.tflite"
    junk.write_bytes(b"not a model" * 100)  # readable, so every check passes; the agent cannot load it
    new = re.sub(
        r'(\[recognition\][^\n]*\nbackend = "tflite")',
        lambda m: f'{m.group(1)}\nplate_model = "{junk}"',
        lane_toml(tmp_path, mosquitto.url),
    )
    assert str(junk) in new

    async def main() -> None:
        async with Central(mosquitto.url, prefix="lanes", site_id="DEMO-POE", lane_id="C1") as central:
            svc = Service(cfg)
            await svc.start()
            try:
                assert await central.wait_for(lambda: central.availability == "online", 60)
                ok = await central.command(apply_command(new))
                assert ok["status"] == "accepted", ok
                assert await svc.exited(120) == 0
                await svc.start()  # on trial: the new config's agent fails at start
                assert cfg.read_text() == new
                assert await svc.exited(120) != 0
                central.availability = None
                await svc.start()  # the next ExecStartPre puts the previous config back
                assert "rolled back" in svc.pre[-1], svc.pre
                assert cfg.read_text() == old
                assert await central.wait_for(lambda: central.availability == "online", 60)
                assert await central.wait_for(lambda: updates(central), 60), "no lane.update upstream"
                assert [u["outcome"] for u in updates(central)] == ["rolled_back"]
            finally:
                await svc.stop()

    asyncio.run(main())
