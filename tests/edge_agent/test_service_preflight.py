"""`edge-agent run` (a real process) and `config check` stop at start, exit 2, naming every missing file.

Missing secrets, keys, certificates and models, a signal state file with no directory and a store path
that is a directory are config errors listed all at once, not a lane that runs without an uplink or
crashes on its store. A simulation says so loudly at start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import main

pytestmark = pytest.mark.timeout(60)


def lane_toml(tmp_path: Path, *, simulation: bool) -> str:
    """A config naming files that are all missing (and a store path that is a directory)."""
    (tmp_path / "store-dir").mkdir()
    gpio = '{ backend = "sim" }' if simulation else '{ backend = "rpigpio" }'
    return f"""
site_id = "TEST"
lane_id = "L9"
simulation = {"true" if simulation else "false"}
[storage]
path = "{tmp_path / "store-dir"}"
[mqtt]
urls = ["mqtts://127.0.0.1:8883"]
username = "lane"
password_file = "{tmp_path / "no-password"}"
[mqtt.tls]
ca_file = "{tmp_path / "no-ca.pem"}"
cert_file = "{tmp_path / "no-lane.crt"}"
key_file = "{tmp_path / "no-lane.key"}"
[devices.rfid]
backend = "r2000"
port = "/dev/null"
[devices.wim]
backend = "modbus"
url = "tcp://127.0.0.1:1"
[devices.loops]
backend = "modbus"
url = "tcp://127.0.0.1:2"
[signal]
gpio = {gpio}
state_file = "{tmp_path / "no-dir" / "signal.json"}"
[commands.keys.central]
alg = "hmac-sha256"
secret_file = "{tmp_path / "no-central.key"}"
roles = ["central"]
commands = ["reference.snapshot"]
[commands.keys.officer]
alg = "ed25519"
public_key_file = "{tmp_path / "no-officer.pub"}"
"""


KEYS = (
    "storage.path",
    "mqtt.password_file",
    "mqtt.tls.ca_file",
    "mqtt.tls.cert_file",
    "mqtt.tls.key_file",
    "signal.state_file",
    "commands.keys.central.secret_file",
    "commands.keys.officer.public_key_file",
)


def run_agent(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_run_stops_with_exit_2_naming_every_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "lane.toml"
    config.write_text(lane_toml(tmp_path, simulation=False))
    proc = run_agent(config)
    assert proc.returncode == 2, proc.stderr
    for key in KEYS:
        assert f"{config}: {key}: " in proc.stderr, (key, proc.stderr)
    assert "is a directory, not a file" in proc.stderr  # the store path
    assert "SIMULATED" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_simulation_says_so_at_start(tmp_path: Path) -> None:
    config = tmp_path / "lane.toml"
    config.write_text(lane_toml(tmp_path, simulation=True))
    proc = run_agent(config)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert "WARNING" in first and "SIMULATED LANE: TEST/L9" in first
    assert "signal.gpio.backend = 'sim'" in first


def test_config_check_lists_the_same_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lane.toml"
    config.write_text(lane_toml(tmp_path, simulation=False))
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert sorted(line.split(":")[0] for line in err.splitlines()) == sorted(KEYS)
    assert main(["config", "check", "--schema-only", str(config)]) == 0


def test_present_files_pass_and_relative_secrets_come_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.config import parse_config
    from edge_agent.config.preflight import preflight

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("s3cret")
    (creds / "lane-hmac").write_bytes(b"k" * 32)
    (tmp_path / "state").mkdir()
    text = lane_toml(tmp_path, simulation=False)
    for old, new in {
        f'path = "{tmp_path / "store-dir"}"': f'path = "{tmp_path / "new" / "lane.sqlite3"}"',
        f'"{tmp_path / "no-password"}"': '"mqtt-password"',
        f'"{tmp_path / "no-central.key"}"': '"lane-hmac"',
        f'"{tmp_path / "no-dir" / "signal.json"}"': f'"{tmp_path / "state" / "signal.json"}"',
    }.items():
        text = text.replace(old, new)
    cfg = parse_config(text)
    keys = [key for key, _ in preflight(cfg, env={"CREDENTIALS_DIRECTORY": str(creds)})]
    # the store's directory is made at start; the secrets were found; the certificates are still missing
    assert keys == [
        "mqtt.tls.ca_file",
        "mqtt.tls.cert_file",
        "mqtt.tls.key_file",
        "commands.keys.officer.public_key_file",
    ]
    (creds / "mqtt-password").write_text("")
    assert ("mqtt.password_file", f"{creds / 'mqtt-password'} is empty") in preflight(
        cfg, env={"CREDENTIALS_DIRECTORY": str(creds)}
    )


def test_a_store_under_a_file_is_refused(tmp_path: Path) -> None:
    from edge_agent.config import parse_config
    from edge_agent.config.preflight import preflight

    (tmp_path / "plain-file").write_text("x")
    text = lane_toml(tmp_path, simulation=False).replace(
        f'path = "{tmp_path / "store-dir"}"', f'path = "{tmp_path / "plain-file" / "lane.sqlite3"}"'
    )
    problems = dict(preflight(parse_config(text)))
    assert problems["storage.path"] == f"{tmp_path / 'plain-file'} is not a directory"


def test_a_missing_recognition_model_is_named(tmp_path: Path) -> None:
    from edge_agent.config import parse_config
    from edge_agent.config.preflight import preflight

    camera = '[devices.cameras.front]\nbackend = "picamera2"\nrole = "plate"\n'
    model = f'[recognition]\nbackend = "tflite"\nplate_model = "{tmp_path / "no-plate.tflite"}"\n'
    cfg = parse_config(lane_toml(tmp_path, simulation=False) + camera + model)
    problems = dict(preflight(cfg))
    assert problems["recognition.plate_model"].startswith(f"cannot read {tmp_path / 'no-plate.tflite'}")
    assert "recognition.container_model" not in problems  # no container camera: that model is not loaded
