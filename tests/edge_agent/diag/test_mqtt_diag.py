"""``edge-agent diag mqtt`` against real Mosquitto brokers: each failing step is named."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.edge_agent.uplink.certs import make_pki
from tests.lanes import minimal_lane_toml
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.timeout(90)


def lane_toml(tmp_path: Path, url: str, extra: str = "") -> Path:
    return minimal_lane_toml(tmp_path, f'[mqtt]\nurls = ["{url}"]\nconnect_timeout_s = 3\n{extra}\n')


def diag(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "diag", "mqtt", "--config", str(cfg), "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_step_passes_on_a_healthy_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    done = diag(lane_toml(tmp_path, mosquitto.url))
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("name lookup", "TCP connect", "CONNECT", "SUBSCRIBE", "round trip", "every step passed"):
        assert step in done.stdout


def test_a_broker_that_is_down_fails_at_tcp(tmp_path: Path) -> None:
    done = diag(lane_toml(tmp_path, f"mqtt://127.0.0.1:{free_port()}"))
    assert done.returncode == 1
    assert "tried: TCP connect" in done.stdout and "connection refused" in done.stdout
    assert "check next: the broker runs" in done.stdout
    assert "CONNECT as" not in done.stdout  # it stops at the failing step


def test_wrong_credentials_fail_at_connect(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    broker = mosquitto_factory(users={"lane": "right"})
    (tmp_path / "pw").write_text("wrong\n")
    extra = f'username = "lane"\npassword_file = "{tmp_path / "pw"}"'
    done = diag(lane_toml(tmp_path, broker.url, extra))
    assert done.returncode == 1, done.stdout
    assert "TCP connect" in done.stdout and "refused the connection" in done.stdout
    assert "password_file" in done.stdout


def test_a_broker_certificate_from_another_ca_fails_at_tls(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", ca_name="Someone Else's CA")
    broker = mosquitto_factory(tls={"ca": pki["ca"], "cert": pki["server_cert"], "key": pki["server_key"]})
    files = f'ca_file = "{other["ca"]}", cert_file = "{pki["client_cert"]}", key_file = "{pki["client_key"]}"'
    extra = f"tls = {{ {files} }}"
    done = diag(lane_toml(tmp_path, broker.url, extra))
    assert done.returncode == 1, done.stdout
    assert "tried: TLS handshake" in done.stdout and "not accepted" in done.stdout
    assert "ca_file" in done.stdout
