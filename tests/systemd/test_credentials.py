"""The shipped example config names its secrets as the unit's credentials, and the agent finds them there.

systemd copies each ``LoadCredential=ID:PATH`` into ``$CREDENTIALS_DIRECTORY/ID``; the config names a
secret by that ID (a relative path). This checks the example config against the unit, and that the
preflight and the MQTT link look a relative client key up in ``$CREDENTIALS_DIRECTORY``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.config.preflight import preflight
from edge_agent.uplink.link import credential_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "lane.example.toml"
UNIT_IDS = set(
    re.findall(r"^LoadCredential=([^:\n]+):", (REPO / "systemd/edge-agent.service").read_text(), re.M)
)
SECRET_KEYS = ("mqtt.password_file", "mqtt.tls.key_file", "commands.keys.central-1.secret_file")


def test_every_relative_secret_of_the_example_is_a_credential_of_the_unit() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.mqtt.tls is not None and cfg.mqtt.tls.key_file is not None
    named = {cfg.mqtt.password_file, cfg.mqtt.tls.key_file, cfg.commands.keys["central-1"].secret_file}
    relative = {str(p) for p in named if p is not None and not p.is_absolute()}
    assert relative == {"mqtt-password", "mqtt-client.key", "lane-hmac"}
    assert relative <= UNIT_IDS


def test_preflight_finds_the_secrets_in_the_credentials_directory(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE)
    for name in UNIT_IDS:
        (tmp_path / name).write_text("0123456789abcdef0123456789abcdef")
    found = {key for key, _ in preflight(cfg, {"CREDENTIALS_DIRECTORY": str(tmp_path)})}
    assert not found & set(SECRET_KEYS)
    (tmp_path / "mqtt-client.key").unlink()
    missing = dict(preflight(cfg, {"CREDENTIALS_DIRECTORY": str(tmp_path)}))
    assert str(tmp_path / "mqtt-client.key") in missing["mqtt.tls.key_file"]


def test_the_link_reads_a_relative_key_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert credential_path(Path("mqtt-client.key")) == tmp_path / "mqtt-client.key"
    assert credential_path(Path("/etc/edge-agent/lane.key")) == Path("/etc/edge-agent/lane.key")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert credential_path(Path("mqtt-client.key")) == Path("mqtt-client.key")
