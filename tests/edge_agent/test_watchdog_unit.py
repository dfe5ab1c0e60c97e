"""The systemd unit that pairs with the watchdog: required directives, and systemd-analyze verify."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_unit_has_the_lane_service_essentials() -> None:
    d = directives()
    assert d["Type"] == ["notify"]
    assert d["WatchdogSec"]
    assert d["Restart"] == ["always"]
    assert d["ExecStart"] == ["/opt/edge-agent/.venv/bin/edge-agent run --config /etc/edge-agent/lane.toml"]
    assert d["StateDirectory"] == ["edge-agent"]
    assert d["ConfigurationDirectory"] == ["edge-agent"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["DevicePolicy"] == ["closed"]
    assert {"char-ttyUSB rw", "char-ttyACM rw", "char-gpiochip rw"} <= set(d["DeviceAllow"])
    assert d["SupplementaryGroups"] == ["dialout gpio video"]
    assert any(v.startswith("lane-hmac:") for v in d["LoadCredential"])
    assert "PrivateDevices" not in d  # it would hide the hardware
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text().replace("LoadCredential", "#"))  # sections parse as INI
    assert parser.sections() == ["Unit", "Service", "Install"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "edge-agent.service"  # the real ExecStart exists only on a lane
    unit.write_text(UNIT.read_text().replace("/opt/edge-agent/.venv/bin/edge-agent", "/bin/true"))
    res = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 0, res.stderr
    assert "edge-agent.service" not in res.stderr, res.stderr
