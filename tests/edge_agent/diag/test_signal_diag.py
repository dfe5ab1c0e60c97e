"""``edge-agent diag signal``: refused unless the lane is closed; the lamp test and its read-back."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.diag import signal as diag_signal

pytestmark = pytest.mark.timeout(30)

SIGNAL_TOML = """
[signal]
gpio = { backend = "sim", loopback = { 17 = 5, 27 = 6, 22 = 13 } }
pins = { red = 17, amber = 27, green = 22, closed_sign = 26 }
dark_ms = 1
readback = { red = 5, amber = 6, green = 13, active_low = false, settle_ms = 0 }
"""


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edge-agent diag")
    diag_signal.register(parser.add_subparsers(dest="cmd", required=True))
    return parser.parse_args(["signal", *argv])


def config(tmp_path: Path, text: str = SIGNAL_TOML) -> Path:
    path = tmp_path / "lane.toml"
    path.write_text(text)
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def state(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "signal-state.json"
    path.write_text(json.dumps(fields))
    return path


def test_refused_when_the_lane_is_not_known_to_be_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("--test", "--config", str(config(tmp_path)), "--hold-s", "0")
    assert args.func(args) == 2
    assert "--lane-closed-confirm" in capsys.readouterr().err


def test_refused_while_an_agent_owns_the_signal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        st = state(tmp_path, pid=agent.pid, closed=True, closed_reason="officer 12")
        cfg = str(config(tmp_path))
        args = parse("--test", "--config", cfg, "--state-file", str(st), "--lane-closed-confirm")
        assert args.func(args) == 2
        assert f"pid {agent.pid}" in capsys.readouterr().err
    finally:
        agent.kill()
        agent.wait()


def test_runs_when_the_agent_stopped_with_the_lane_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = state(tmp_path, pid=dead_pid(), closed=True, closed_reason="officer 12: works")
    args = parse("--test", "--config", str(config(tmp_path)), "--state-file", str(st), "--hold-s", "0")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "lane closed when the agent stopped (officer 12: works)" in out
    lines = [line for line in out.splitlines() if "commanded on" in line]
    assert [line.split()[0] for line in lines] == ["red", "amber", "green"]
    assert "red=dark, amber=dark, green=lit" in lines[2]
    assert "all lamps answered as commanded" in out


def test_stopped_agent_with_lane_open_still_needs_confirmation(tmp_path: Path) -> None:
    st = state(tmp_path, pid=None, closed=False)
    args = parse("--test", "--config", str(config(tmp_path)), "--state-file", str(st), "--hold-s", "0")
    assert args.func(args) == 2
    args = parse(
        "--test",
        "--config",
        str(config(tmp_path)),
        "--state-file",
        str(st),
        "--hold-s",
        "0",
        "--lane-closed-confirm",
    )
    assert args.func(args) == 0


def test_a_dead_lamp_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, SIGNAL_TOML.replace(", 22 = 13", ""))  # green's read-back wire cut
    args = parse("--test", "--config", str(cfg), "--hold-s", "0", "--lane-closed-confirm")
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "green=dark MISMATCH" in out
    assert "1 read-back mismatch(es)" in out


def test_without_read_back_the_test_still_cycles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--test", "--hold-s", "0", "--lane-closed-confirm")  # default config: sim, no read-back
    assert args.func(args) == 0
    assert "no read-back configured" in capsys.readouterr().out


def test_bad_config_and_unavailable_backend_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = str(config(tmp_path, "[signal]\namber_s = -1\n"))
    args = parse("--test", "--config", bad, "--lane-closed-confirm")
    assert args.func(args) == 2
    assert "amber_s" in capsys.readouterr().err
    pi = config(tmp_path, '[signal]\ngpio = { backend = "rpigpio" }\n')
    args = parse("--test", "--config", str(pi), "--lane-closed-confirm", "--hold-s", "0")
    if importlib.util.find_spec("RPi") is None:
        assert args.func(args) == 2
        assert 'backend = "sim"' in capsys.readouterr().err


def test_without_test_it_shows_the_recorded_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = state(tmp_path, pid=None, closed=True, closed_reason="x", aspect="red")
    args = parse("--state-file", str(st))
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["closed"] is True
    args = parse("--state-file", str(tmp_path / "none.json"))
    assert args.func(args) == 0
    assert "no signal state recorded" in capsys.readouterr().out
