"""A simulated lane's config for tests that build the agent from parts."""

from __future__ import annotations

import secrets
from pathlib import Path

from edge_agent.config import LaneConfig
from edge_agent.config.camera import SimRecognitionConfig
from hw_sim.player import Layout
from lane_demo.demo import demo_config


def sim_config(
    tmp_path: Path,
    *,
    rfid_port: str = "/dev/null",
    wim_url: str = "tcp://127.0.0.1:1",
    loops_url: str = "tcp://127.0.0.1:2",
    mqtt_url: str = "mqtt://127.0.0.1:1",
) -> LaneConfig:
    """The demo lane's config with a fresh central key and store under ``tmp_path``.

    Recognition reads the simulated cameras' labels (fast, no model): the demo itself reads pixels.
    """
    key = tmp_path / "central.key"
    key.write_bytes(secrets.token_bytes(32))
    cfg = demo_config(
        Layout(),
        rfid_port=rfid_port,
        wim_url=wim_url,
        loops_url=loops_url,
        store=tmp_path / "lane.sqlite3",
        mqtt_url=mqtt_url,
        key_file=key,
        camera_fps=4.0,
    )
    return cfg.model_copy(update={"recognition": SimRecognitionConfig()})


UNPLUGGED_DEVICES = """
[devices.rfid]
backend = "r2000"
port = "/dev/null"
[devices.wim]
backend = "modbus"
url = "tcp://127.0.0.1:1"
[devices.loops]
backend = "modbus"
url = "tcp://127.0.0.1:2"
"""
"""The lane's three wired devices pointed nowhere: for configs whose tests never start the lane."""


def minimal_lane_toml(tmp_path: Path, sections: str = "", *, name: str = "lane.toml") -> Path:
    """A valid simulated lane's TOML (store under ``tmp_path``, devices unplugged) plus ``sections``."""
    cfg = tmp_path / name
    cfg.write_text(
        f'''site_id = "DIAG"
lane_id = "L1"
simulation = true
[storage]
path = "{tmp_path / "lane.sqlite3"}"
[signal]
gpio = {{ backend = "sim" }}
{UNPLUGGED_DEVICES}
{sections}
'''
    )
    return cfg
