"""The link against a real Mosquitto: refused CONNACK, credentials from files, TLS with client certs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.health import DeviceState
from tests.edge_agent.uplink.agent import LANE, SITE, agent, commit_passages, mqtt_cfg, passage
from tests.edge_agent.uplink.certs import make_pki
from tests.mosquitto import Central, Mosquitto, async_test

BASE = f"lanes/{SITE}/{LANE}"


async def _until(cond: Callable[[], bool], limit_s: float = 5.0) -> None:
    for _ in range(int(limit_s / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_refused_connack_is_reported_as_refused(
    protocol: str, tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    broker = mosquitto_factory(users={"lane-c3": "right-password"})
    (tmp_path / "pw").write_text("wrong-password\n")
    cfg = mqtt_cfg(broker.url, protocol=protocol, username="lane-c3", password_file=tmp_path / "pw")

    @async_test
    async def run() -> None:
        async with agent(tmp_path / "lane.sqlite3", cfg) as up:
            await _until(lambda: up.health().counters["refused"] >= 2)
            h = up.health()
            assert not up.connected
            assert h.state is DeviceState.DOWN
            assert "refused" in h.detail
            assert "authori" in h.detail.lower() or "password" in h.detail.lower()
            assert h.counters["connects"] == 0
            assert not await up.wait_connected(0.2)

    run()


@async_test
async def test_password_from_credentials_directory(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    central: Callable[..., Central],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = mosquitto_factory(users={"lane-c3": "s3cret", "central": "c"})
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    c = central(broker, (f"{BASE}/passage",), username="central", password="c")
    cfg = mqtt_cfg(broker.url, username="lane-c3", password_file=Path("mqtt-password"))
    async with agent(tmp_path / "lane.sqlite3", cfg) as up:
        assert await up.wait_connected(5)
        await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(1)])
        up.kick()
        await c.await_for(lambda m: len(m) == 1)


@async_test
async def test_missing_password_file_is_a_clear_link_error(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = mqtt_cfg(mosquitto.url, username="lane-c3", password_file=tmp_path / "absent")
    async with agent(tmp_path / "lane.sqlite3", cfg) as up:
        await _until(lambda: up.health().counters["connect_failures"] >= 1)
        assert "password file" in up.health().detail
        assert not up.connected


def test_tls_with_server_verification_and_client_certificate(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], central: Callable[..., Central]
) -> None:
    pki = make_pki(tmp_path / "pki")
    broker = mosquitto_factory(tls={"ca": pki["ca"], "cert": pki["server_cert"], "key": pki["server_key"]})
    c = central(
        broker,
        (f"{BASE}/passage",),
        tls_files={"ca": pki["ca"], "cert": pki["client_cert"], "key": pki["client_key"]},
    )
    good = mqtt_cfg(
        broker.url,
        tls={"ca_file": pki["ca"], "cert_file": pki["client_cert"], "key_file": pki["client_key"]},
    )
    other = make_pki(tmp_path / "other", ca_name="Someone Else's CA")
    wrong_ca = mqtt_cfg(
        broker.url,
        tls={"ca_file": other["ca"], "cert_file": pki["client_cert"], "key_file": pki["client_key"]},
    )
    no_client_cert = mqtt_cfg(broker.url, tls={"ca_file": pki["ca"]})

    @async_test
    async def run() -> None:
        async with agent(tmp_path / "a.sqlite3", good) as up:
            assert await up.wait_connected(5)
            await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(7)])
            up.kick()
            await c.await_for(lambda m: len(m) == 1)
        async with agent(tmp_path / "b.sqlite3", wrong_ca) as up:
            await _until(lambda: up.health().counters["connect_failures"] >= 1)
            assert not up.connected
            assert "certificate verify failed" in up.health().detail
        async with agent(tmp_path / "c.sqlite3", no_client_cert) as up:
            await _until(lambda: up.health().counters["connect_failures"] >= 1)
            assert up.health().counters["connects"] == 0
            assert up.health().counters["refused"] == 0  # a TLS failure is not a refused CONNACK
            assert "before CONNACK" in up.health().detail

    run()
